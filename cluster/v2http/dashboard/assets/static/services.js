// Services view: every registration under the discovery directory, grouped
// by service, with the DNS names that answer it and a client-side TTL
// countdown. A recursive watch keeps it current; an expired instance
// disappears on its expire event. Heartbeats (refresh=true) send no watch
// event, so when a countdown runs low the view re-reads the directory
// once (at most every RESYNC_MS) to learn the new expirations.

import { Tree, Watcher, keys, EtcdError } from './api.js';
import { instanceNames } from './names.js';
import { h, $, fmtDuration, serverNow, schedule, pager } from './util.js';

const PAGE = 100;
const RESYNC_MS = 3000;

export class ServicesView {
  constructor(disco, onStatus) {
    this.disco = disco; // {dir, zone}
    this.onStatus = onStatus;
    this.tree = new Tree(disco.dir, changed => this.changed(changed));
    this.instances = new Map(); // key -> instance
    this.sorted = [];           // keys in (service, key) order
    this.rows = new Map();      // key -> rendered <tr>
    this.page = 0;
    this.filter = '';
    this.lastResync = 0;
    this.render = schedule(() => this.draw());
    $('#svc-filter').addEventListener('input', e => { this.filter = e.target.value.trim().toLowerCase(); this.page = 0; this.render(); });
  }

  async start(hint) {
    const index = await this.tree.load(hint);
    this.watcher = new Watcher(this.disco.dir, ev => this.tree.apply(ev), () => this.tree.load(), this.onStatus);
    this.watcher.start(index);
    setInterval(() => this.tick(), 1000);
  }

  parse(n) {
    const names = instanceNames(n.key, this.disco.dir, this.disco.zone);
    let rec = null;
    let err = '';
    try { rec = JSON.parse(n.value); } catch { err = 'not a SkyDNS record (ignored by DNS)'; }
    if (rec !== null && typeof rec !== 'object') { rec = null; err = 'not a SkyDNS record (ignored by DNS)'; }
    const exp = n.expiration ? Date.parse(n.expiration) : 0;
    return { node: n, names, rec, err, exp, ttl: n.ttl, service: names ? names.service : '' };
  }

  changed(keysChanged) {
    if (keysChanged === null) {
      this.instances.clear();
      for (const n of this.tree.leaves.values()) this.instances.set(n.key, this.parse(n));
    } else {
      for (const k of keysChanged) {
        const n = this.tree.leaves.get(k);
        if (n) this.instances.set(k, this.parse(n));
        else this.instances.delete(k);
        this.rows.delete(k);
      }
    }
    this.sorted = null;
    this.render();
  }

  order() {
    if (!this.sorted) {
      this.sorted = [...this.instances.values()].sort((a, b) =>
        a.service < b.service ? -1 : a.service > b.service ? 1 : a.node.key < b.node.key ? -1 : a.node.key > b.node.key ? 1 : 0);
    }
    const f = this.filter;
    return f ? this.sorted.filter(i => i.node.key.toLowerCase().includes(f) || (i.names && i.names.name.includes(f)) || (i.rec && String(i.rec.host || '').includes(f))) : this.sorted;
  }

  draw() {
    const list = this.order();
    const services = new Set(list.map(i => i.service));
    $('#svc-summary').textContent = `${services.size} service${services.size === 1 ? '' : 's'}, ${list.length} instance${list.length === 1 ? '' : 's'} under ${this.disco.dir}`;
    this.page = pager($('#svc-pager'), list.length, PAGE, this.page, p => { this.page = p; this.render(); });
    const shown = list.slice(this.page * PAGE, (this.page + 1) * PAGE);
    const out = [];
    let group = null;
    for (const inst of shown) {
      if (!group || group.service !== inst.service) {
        group = { service: inst.service, tbody: h('tbody') };
        const n = inst.names;
        out.push(h('div', { class: 'service', 'data-service': inst.service },
          h('h3', null, inst.service || '(zone apex)', ' ',
            h('span', { class: 'muted small' }, `${this.count(inst.service)} instance(s)`)),
          n ? h('div', { class: 'dns' }, 'DNS: ', h('code', null, n.serviceName), n.srvName ? [' SRV ', h('code', null, n.srvName)] : null) : null,
          h('div', { class: 'table-wrap' }, h('table', { class: 'rows' },
            h('thead', null, h('tr', null, ...['Instance', 'DNS name', 'Host', 'Port', 'Priority', 'Weight', 'TTL'].map(t => h('th', null, t)))),
            group.tbody))));
      }
      group.tbody.append(this.row(inst));
    }
    if (!out.length) out.push(h('p', { class: 'muted' }, this.instances.size ? 'No instance matches the filter.' : 'No service is registered yet.'));
    $('#svc-list').replaceChildren(...out);
    this.tick();
  }

  count(service) {
    let n = 0;
    for (const i of this.instances.values()) if (i.service === service) n++;
    return n;
  }

  row(inst) {
    let tr = this.rows.get(inst.node.key);
    if (tr) return tr;
    const r = inst.rec || {};
    tr = h('tr', { 'data-key': inst.node.key },
      h('td', { 'data-label': 'Instance' }, h('strong', null, inst.names ? inst.names.instance : inst.node.key)),
      h('td', { 'data-label': 'DNS name' }, inst.err ? h('span', { class: 'bad' }, inst.err) : h('code', { class: 'dnsname' }, inst.names ? inst.names.name : '')),
      h('td', { 'data-label': 'Host' }, r.host || (r.text ? 'TXT' : '')),
      h('td', { 'data-label': 'Port' }, r.port ? String(r.port) : ''),
      h('td', { 'data-label': 'Priority' }, String(r.priority || 0)),
      h('td', { 'data-label': 'Weight' }, String(r.weight || 0)),
      h('td', { 'data-label': 'TTL', class: 'ttl' }),
    );
    tr.ttlCell = tr.lastChild;
    this.rows.set(inst.node.key, tr);
    return tr;
  }

  // tick updates the countdowns of the rows on the page and asks for a
  // re-read when one runs low (a heartbeat may have moved it).
  tick() {
    const now = serverNow();
    let low = false;
    for (const [key, tr] of this.rows) {
      if (!tr.isConnected) continue;
      const inst = this.instances.get(key);
      if (!inst) continue;
      if (!inst.exp) { tr.ttlCell.textContent = 'no TTL'; tr.className = ''; continue; }
      const left = inst.exp - now;
      const frac = inst.ttl > 0 ? left / (inst.ttl * 1000) : 1;
      tr.ttlCell.textContent = left > 0 ? fmtDuration(left) : 'expiring';
      tr.className = left <= 0 ? 'age-gone' : frac < 0.25 ? 'age-old' : frac < 0.6 ? 'age-mid' : 'age-fresh';
      if (frac < 0.5) low = true;
    }
    if (low && now - this.lastResync > RESYNC_MS) {
      this.lastResync = now;
      this.resync();
    }
  }

  // resync re-reads expirations (no events for heartbeats) and updates
  // only what moved.
  async resync() {
    try {
      const { event } = await keys('GET', this.disco.dir, { recursive: 'true' });
      const seen = new Map();
      const walk = n => { if (n.dir) (n.nodes || []).forEach(walk); else seen.set(n.key, n); };
      if (event && event.node) walk(event.node);
      for (const [k, inst] of this.instances) {
        const n = seen.get(k);
        if (n && n.modifiedIndex === inst.node.modifiedIndex && n.expiration) {
          inst.exp = Date.parse(n.expiration);
          inst.ttl = Math.max(inst.ttl, n.ttl);
        }
      }
    } catch (err) {
      if (!(err instanceof EtcdError)) return; // offline: the watcher reports it
    }
  }
}
