// The live event feed (a recursive watch of "/") and the identity the page
// uses (/mod/dashboard/api/whoami, computed by the keys API's own
// authorization).

import { getJSON } from './api.js';
import { h, $, truncate, schedule } from './util.js';

const KEEP = 200;

export class EventsView {
  constructor() {
    this.events = [];
    this.paused = false;
    this.filter = '';
    this.pending = [];
    this.flush = schedule(() => this.draw());
    $('#ev-pause').addEventListener('click', () => {
      this.paused = !this.paused;
      $('#ev-pause').textContent = this.paused ? 'Resume' : 'Pause';
      if (!this.paused) this.flush();
    });
    $('#ev-filter').addEventListener('input', e => { this.filter = e.target.value.trim(); this.redraw(); });
  }

  add(ev) {
    this.events.push(ev);
    if (this.events.length > KEEP) this.events.shift();
    if (!this.filter || (ev.node && ev.node.key.startsWith(this.filter))) this.pending.push(ev);
    if (!this.paused) this.flush();
  }

  row(ev) {
    const n = ev.node || {};
    return h('tr', { class: 'ev-' + ev.action, 'data-index': n.modifiedIndex },
      h('td', { 'data-label': 'Index' }, String(n.modifiedIndex || '')),
      h('td', { 'data-label': 'Action' }, h('span', { class: 'tag act-' + ev.action }, ev.action)),
      h('td', { 'data-label': 'Key', class: 'mono' }, n.key || ''),
      h('td', { 'data-label': 'Value', class: 'mono' }, n.dir ? '(dir)' : truncate(n.value, 60)),
      h('td', { 'data-label': 'Time' }, new Date().toLocaleTimeString()));
  }

  // draw prepends the new rows only (at most KEEP of them: a burst of
  // events between two frames makes no rows that would be trimmed at
  // once) and trims the oldest. While the view is hidden it only notes
  // that a redraw is due when it is shown.
  draw() {
    if ($('#view-events').hidden) {
      this.pending = [];
      this.stale = true;
      return;
    }
    const tbody = $('#ev-list tbody');
    const add = this.pending.slice(-KEEP);
    this.pending = [];
    const frag = document.createDocumentFragment();
    for (let i = add.length - 1; i >= 0; i--) frag.append(this.row(add[i]));
    tbody.prepend(frag);
    while (tbody.children.length > KEEP) tbody.lastChild.remove();
  }

  // shown is called when the view becomes visible.
  shown() {
    if (this.stale) { this.stale = false; this.redraw(); }
  }

  redraw() {
    $('#ev-list tbody').replaceChildren();
    this.pending = this.events.filter(ev => !this.filter || (ev.node && ev.node.key.startsWith(this.filter)));
    this.draw();
  }

  status(s, err) {
    $('#ev-status').textContent = s === 'live' ? 'live' : s === 'resync' ? 're-reading (history moved on)' : `watch interrupted: ${err ? err.message : s}; retrying`;
  }

  async whoami() {
    const id = await getJSON('/mod/dashboard/api/whoami');
    const who = id.name || '(no identity)';
    $('#identity').replaceChildren(h('span', null, h('span', { class: 'muted' }, 'as '), h('strong', null, who),
      id.authEnabled ? (id.root ? h('span', { class: 'tag leader' }, 'root') : h('span', { class: 'tag' }, 'limited')) : null));
    const can = k => [k.read ? 'read' : null, k.readRecursive ? 'read recursively' : null, k.write ? 'write' : null].filter(Boolean).join(', ') || 'nothing';
    $('#whoami').replaceChildren(h('div', null,
      h('h3', null, 'Identity: ', h('code', null, who)),
      h('p', null, id.authEnabled
        ? (id.root ? 'Authorization is on; this identity holds the root role: it may do everything.' : 'Authorization is on; this identity may do what its roles grant:')
        : 'Authorization is off: every certificate of the cluster may read and write every key (except /_cairn, for nodes only).'),
      id.roles.length ? h('ul', null, ...id.roles.map(r => h('li', null, h('strong', null, r.name), ` read ${r.read.join(' ') || '-'}; write ${r.write.join(' ') || '-'}`))) : null,
      h('table', { class: 'rows compact' }, h('thead', null, h('tr', null, h('th', null, 'Key'), h('th', null, 'May'))),
        h('tbody', null, ...id.keys.map(k => h('tr', null, h('td', { class: 'mono', 'data-label': 'Key' }, k.key), h('td', { 'data-label': 'May' }, can(k)))))),
    ));
    return id;
  }
}
