// Locks and elections: the queues under /_mod/lock/<name> and
// /_mod/leader/<name> (one in-order key per waiter, with a TTL; the holder
// is the entry with the lowest createdIndex), read once and kept current by
// a watch of /_mod.

import { Tree, Watcher } from './api.js';
import { h, $, fmtDuration, serverNow, schedule } from './util.js';

const KINDS = [
  { root: '/_mod/lock', list: '#lock-list', what: 'lock', holder: 'holder', valueLabel: 'value', empty: 'No lock is held or waited for.' },
  { root: '/_mod/leader', list: '#leader-list', what: 'election', holder: 'leader', valueLabel: 'candidate', empty: 'No election is running.' },
];

export class LocksView {
  constructor(onStatus) {
    this.onStatus = onStatus;
    this.tree = new Tree('/_mod', () => this.render());
    this.render = schedule(() => this.draw());
  }

  async start(hint) {
    const index = await this.tree.load(hint);
    this.watcher = new Watcher('/_mod', ev => this.tree.apply(ev), () => this.tree.load(), this.onStatus);
    this.watcher.start(index);
    setInterval(() => this.tick(), 1000);
  }

  // tick redraws the countdowns of the visible view and, as the services
  // view does, re-reads the queues when one runs low: holders renew with
  // TTL refreshes, which send no watch event.
  tick() {
    if ($('#view-locks').hidden) return;
    this.render();
    const now = serverNow();
    const low = [...this.tree.leaves.values()].some(n => n.expiration && (Date.parse(n.expiration) - now) < n.ttl * 500);
    if (low && now - (this.lastResync || 0) > 3000) {
      this.lastResync = now;
      this.tree.load().catch(() => {}); // offline: the watcher reports it
    }
  }

  draw() {
    for (const kind of KINDS) {
      const queues = new Map(); // name -> entries
      for (const n of this.tree.leaves.values()) {
        if (!n.key.startsWith(kind.root + '/')) continue;
        const name = n.key.slice(kind.root.length + 1, n.key.lastIndexOf('/'));
        if (!name) continue;
        if (!queues.has(name)) queues.set(name, []);
        queues.get(name).push(n);
      }
      const names = [...queues.keys()].sort();
      const out = names.map(name => {
        const q = queues.get(name).sort((a, b) => a.createdIndex - b.createdIndex);
        return h('div', { class: 'queue', 'data-queue': name },
          h('h3', null, name, ' ', h('span', { class: 'muted small' }, `${kind.what}, ${q.length - 1} waiting`)),
          h('ol', null, ...q.map((n, i) => h('li', { class: i === 0 ? 'holder' : '' },
            h('span', { class: 'tag' + (i === 0 ? ' leader' : '') }, i === 0 ? kind.holder : `#${i}`), ' ',
            h('strong', null, n.value === '-' ? '(no value)' : n.value), ' ',
            h('span', { class: 'muted' }, `index ${n.createdIndex}`),
            n.expiration ? h('span', { class: 'muted' }, ` \u00b7 TTL ${fmtDuration(Date.parse(n.expiration) - serverNow())}`) : null,
          ))));
      });
      if (!out.length) out.push(h('p', { class: 'muted' }, kind.empty));
      $(kind.list).replaceChildren(...out);
    }
  }
}
