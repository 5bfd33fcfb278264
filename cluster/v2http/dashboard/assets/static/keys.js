// Keys view: one directory at a time (never the whole tree), kept current
// by the root watch's events; a key's detail with compare-and-swap edits
// (prevIndex = the modifiedIndex shown) and deletes after a confirmation.

import { keys, EtcdError, nodeInfo } from './api.js';
import { h, $, fmtDuration, serverNow, truncate, flash, schedule, pager } from './util.js';

const PAGE = 200;

function parentOf(key) {
  const i = key.lastIndexOf('/');
  return i <= 0 ? '/' : key.slice(0, i);
}
function baseOf(key) { return key.slice(key.lastIndexOf('/') + 1); }
function join(dir, name) { return (dir === '/' ? '' : dir) + '/' + name; }

export class KeysView {
  constructor() {
    this.dir = '/';
    this.children = new Map(); // key -> node info (dirs and leaves)
    this.sorted = null;
    this.page = 0;
    this.selected = null; // node info shown in the detail pane
    this.render = schedule(() => this.draw());
    $('#key-go').addEventListener('submit', e => { e.preventDefault(); this.open($('#key-path').value || '/'); });
    $('#key-new').addEventListener('click', () => this.showNew());
  }

  async open(dir, keepDetail) {
    dir = '/' + dir.split('/').filter(s => s).join('/');
    const seq = this.seq = (this.seq || 0) + 1; // a later open wins
    this.dir = dir;
    this.page = 0;
    $('#key-path').value = dir;
    if (!keepDetail) this.closeDetail();
    this.drawCrumbs();
    this.children.clear();
    this.sorted = null;
    try {
      const { event } = await keys('GET', dir, { sorted: 'true' });
      if (seq !== this.seq) return;
      const n = event.node;
      if (!n.dir) { // a key: show it in its directory
        await this.open(parentOf(dir), true);
        this.select(nodeInfo(n));
        return;
      }
      for (const c of n.nodes || []) this.children.set(c.key, nodeInfo(c));
    } catch (err) {
      if (seq === this.seq) flash(`GET ${dir}: ${err.message}`);
    }
    this.render();
  }

  drawCrumbs() {
    const parts = this.dir.split('/').filter(s => s);
    const crumbs = [h('a', { href: '#keys', onclick: e => { e.preventDefault(); this.open('/'); } }, '/')];
    let acc = '';
    for (const p of parts) {
      acc += '/' + p;
      const target = acc;
      crumbs.push(h('a', { href: '#keys', onclick: e => { e.preventDefault(); this.open(target); } }, p), '/');
    }
    $('#key-crumbs').replaceChildren(...crumbs);
  }

  // apply is a watch event of the root watch: only what touches the open
  // directory's listing or the key shown changes the page.
  apply(ev) {
    const n = ev.node;
    if (!n || !n.key) return;
    const removed = ev.action === 'delete' || ev.action === 'expire' || ev.action === 'compareAndDelete';
    if (this.selected && (n.key === this.selected.key || (removed && this.selected.key.startsWith(n.key + '/')))) {
      if (removed) this.showGone(this.selected.key, ev.action);
      else this.select(nodeInfo(n), true);
    }
    if (n.key === this.dir || (removed && this.dir.startsWith(n.key + '/'))) {
      if (removed) { this.children.clear(); this.sorted = null; this.render(); }
      return;
    }
    const prefix = this.dir === '/' ? '/' : this.dir + '/';
    if (!n.key.startsWith(prefix)) return;
    const rest = n.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) {
      if (removed) this.children.delete(n.key);
      else this.children.set(n.key, nodeInfo(n));
    } else if (!removed) { // a key below a child directory: the directory exists
      const child = prefix + rest.slice(0, slash);
      if (!this.children.has(child)) this.children.set(child, { key: child, dir: true, modifiedIndex: n.modifiedIndex, createdIndex: n.createdIndex });
    } else {
      return;
    }
    this.sorted = null;
    this.render();
  }

  draw() {
    if (!this.sorted) this.sorted = [...this.children.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.page = pager($('#key-pager'), this.sorted.length, PAGE, this.page, p => { this.page = p; this.render(); });
    const now = serverNow();
    const rows = this.sorted.slice(this.page * PAGE, (this.page + 1) * PAGE).map(n => h('tr',
      { 'data-key': n.key, class: 'clickable' + (this.selected && this.selected.key === n.key ? ' selected' : ''), onclick: () => (n.dir ? this.open(n.key) : this.select(n)) },
      h('td', { 'data-label': 'Key' }, n.dir ? h('strong', null, baseOf(n.key) + '/') : baseOf(n.key)),
      h('td', { 'data-label': 'Value', class: 'mono' }, n.dir ? '' : truncate(n.value, 80)),
      h('td', { 'data-label': 'TTL' }, n.expiration ? fmtDuration(Date.parse(n.expiration) - now) : ''),
      h('td', { 'data-label': 'Modified' }, String(n.modifiedIndex || '')),
    ));
    if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'Empty directory.')));
    $('#key-list tbody').replaceChildren(...rows);
  }

  closeDetail() {
    this.selected = null;
    $('#key-detail').hidden = true;
  }

  select(n, changedElsewhere) {
    const wasEditing = changedElsewhere && this.selected && document.activeElement && $('#key-detail').contains(document.activeElement);
    this.selected = n;
    const d = $('#key-detail');
    d.hidden = false;
    const value = h('textarea', { id: 'key-value', rows: 8, spellcheck: 'false', 'aria-label': 'Value' });
    value.value = n.value || '';
    const ttl = h('input', { id: 'key-ttl', type: 'number', min: '0', placeholder: 'none', 'aria-label': 'TTL seconds' });
    const err = h('div', { class: 'form-error', id: 'key-error', role: 'alert' });
    const exp = n.expiration ? `${fmtDuration(Date.parse(n.expiration) - serverNow())} (expires ${new Date(n.expiration).toLocaleString()})` : 'none';
    const form = h('form', { id: 'key-form', onsubmit: e => { e.preventDefault(); this.save(n, value.value, ttl.value, err); } },
      h('h3', { class: 'mono' }, n.key),
      h('dl', { class: 'meta' },
        h('dt', null, 'Created index'), h('dd', null, String(n.createdIndex)),
        h('dt', null, 'Modified index'), h('dd', { id: 'key-mod' }, String(n.modifiedIndex)),
        h('dt', null, 'TTL'), h('dd', null, exp)),
      changedElsewhere && wasEditing ? h('p', { class: 'warn' }, 'This key changed while you were editing it: saving now will fail with error 101 (compare failed).') : null,
      h('label', { for: 'key-value' }, 'Value'), value,
      h('label', { for: 'key-ttl' }, 'New TTL in seconds (empty: none)'), ttl,
      err,
      h('div', { class: 'buttons' },
        h('button', { type: 'submit', id: 'key-save' }, 'Save (compare-and-swap)'),
        h('button', { type: 'button', class: 'danger', id: 'key-delete', onclick: () => this.remove(n, err) }, 'Delete'),
        h('button', { type: 'button', onclick: () => this.closeDetail() }, 'Close')),
    );
    if (!wasEditing) d.replaceChildren(form);
    else d.prepend(h('p', { class: 'warn' }, `Changed elsewhere: now at index ${n.modifiedIndex}. Reload the key to edit the new value.`));
    this.render();
  }

  showGone(key, action) {
    const d = $('#key-detail');
    d.replaceChildren(h('h3', { class: 'mono' }, key), h('p', { class: 'warn' }, `This key is gone (${action}).`),
      h('button', { type: 'button', onclick: () => this.closeDetail() }, 'Close'));
    this.selected = null;
  }

  showError(errEl, what, err) {
    const msg = `${what} failed: ${err.message}`;
    errEl.textContent = msg;
    if (err instanceof EtcdError && err.errorCode === 110) errEl.append(h('div', null, 'Your certificate identity may not write this key (see the identity in the Events view).'));
    if (err instanceof EtcdError && err.errorCode === 101) errEl.append(h('div', null, 'Someone changed the key since you loaded it; nothing was written. Reopen the key to see the current value.'));
    flash(msg);
  }

  async save(n, value, ttl, errEl) {
    errEl.textContent = '';
    try {
      const { event } = await keys('PUT', n.key, { prevIndex: n.modifiedIndex }, { value, ttl: ttl === '' ? undefined : ttl });
      flash(`Saved ${n.key} at index ${event.node.modifiedIndex}`, 'ok');
      this.select(nodeInfo(event.node));
    } catch (err) {
      this.showError(errEl, `Compare-and-swap of ${n.key} at index ${n.modifiedIndex}`, err);
    }
  }

  async remove(n, errEl) {
    const dlg = $('#confirm');
    $('#confirm-text').textContent = `Delete ${n.key} (modified index ${n.modifiedIndex})? This cannot be undone.`;
    dlg.returnValue = '';
    dlg.showModal();
    await new Promise(r => dlg.addEventListener('close', r, { once: true }));
    if (dlg.returnValue !== 'ok') return;
    try {
      await keys('DELETE', n.key, { prevIndex: n.modifiedIndex });
      flash(`Deleted ${n.key}`, 'ok');
      this.closeDetail();
    } catch (err) {
      this.showError(errEl, `Delete of ${n.key}`, err);
    }
  }

  showNew() {
    this.selected = null;
    const d = $('#key-detail');
    d.hidden = false;
    const name = h('input', { id: 'new-name', required: true, placeholder: 'name or a/b/c', 'aria-label': 'Name' });
    const value = h('textarea', { id: 'new-value', rows: 5, 'aria-label': 'Value' });
    const ttl = h('input', { id: 'new-ttl', type: 'number', min: '0', placeholder: 'none', 'aria-label': 'TTL seconds' });
    const isDir = h('input', { id: 'new-dir', type: 'checkbox' });
    const err = h('div', { class: 'form-error', id: 'new-error', role: 'alert' });
    d.replaceChildren(h('form', { id: 'new-form', onsubmit: async e => {
      e.preventDefault();
      err.textContent = '';
      const key = join(this.dir, name.value.replace(/^\/+/, ''));
      try {
        const form = isDir.checked ? { dir: 'true', ttl: ttl.value || undefined } : { value: value.value, ttl: ttl.value || undefined };
        const { event } = await keys('PUT', key, { prevExist: 'false' }, form);
        flash(`Created ${key} at index ${event.node.modifiedIndex}`, 'ok');
        if (isDir.checked) this.closeDetail(); else this.select(nodeInfo(event.node));
      } catch (ex) {
        this.showError(err, `Create ${key}`, ex);
      }
    } },
    h('h3', null, `New key in ${this.dir}`),
    h('label', { for: 'new-name' }, 'Name'), name,
    h('label', { for: 'new-value' }, 'Value'), value,
    h('label', { for: 'new-ttl' }, 'TTL in seconds (empty: none)'), ttl,
    h('label', { class: 'check' }, isDir, ' a directory'),
    err,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', id: 'new-save' }, 'Create'),
      h('button', { type: 'button', onclick: () => this.closeDetail() }, 'Cancel'))));
    name.focus();
  }
}
