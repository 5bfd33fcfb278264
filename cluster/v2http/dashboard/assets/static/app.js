// The dashboard: tabs by URL hash (no page reloads), one poll of the
// cluster status, and three watches: "/" (event feed and keys view), the
// discovery directory (services) and /_mod (locks and elections).

import { Watcher, keys, getJSON, EtcdError } from './api.js';
import { $, flash } from './util.js';
import { ClusterView } from './cluster.js';
import { ServicesView } from './services.js';
import { KeysView } from './keys.js';
import { LocksView } from './locks.js';
import { EventsView } from './events.js';

const VIEWS = ['cluster', 'services', 'keys', 'locks', 'events'];

let onShow = () => {};

function show() {
  const want = (location.hash || '#cluster').slice(1).split('/')[0];
  const view = VIEWS.includes(want) ? want : 'cluster';
  for (const v of VIEWS) {
    $('#view-' + v).hidden = v !== view;
    document.querySelector(`#tabs a[data-view="${v}"]`).classList.toggle('active', v === view);
  }
  document.body.dataset.view = view;
  onShow(view);
}

async function main() {
  window.addEventListener('hashchange', show);
  $('#flash').addEventListener('click', () => { $('#flash').hidden = true; });
  show();
  const events = new EventsView();
  onShow = view => { if (view === 'events') events.shown(); };
  const keyView = new KeysView();
  // Who the page is, what exists: read first, so that directories that
  // are not there yet are watched, not read (a read would be a 404).
  let id = null;
  try {
    id = await events.whoami();
  } catch (err) {
    flash('Identity: ' + err.message);
  }
  const hint = key => {
    const k = id && id.keys.find(a => a.key === key);
    return k ? { exists: k.exists, index: id.index } : undefined;
  };
  let services = null;
  const cluster = new ClusterView(c => {
    $('#member').textContent = `\u00b7 ${c.name}`;
    if (!services) {
      services = new ServicesView(c.discovery, s => { if (s === 'error') $('#svc-summary').textContent = 'watch interrupted; retrying'; });
      services.start(hint(c.discovery.dir)).catch(err => flash('Services: ' + err.message));
    }
  });
  await cluster.refresh();
  await keyView.open('/');
  new LocksView(() => {}).start(hint('/_mod')).catch(err => flash('Locks: ' + err.message));
  // The root watch starts after the index whoami read (a client that may
  // not read "/" itself may still watch it for the keys it may read).
  let index = id ? id.index : 0;
  if (!id) {
    try { index = (await keys('GET', '/', {})).index; } catch (err) { flash('Cannot read /: ' + err.message); }
  }
  // The cost of applying events, for diagnostics (and TestDashboardScale).
  const stats = window.cairnDashboard = { events: 0, applyMs: 0 };
  const root = new Watcher('/', ev => {
    const t0 = performance.now();
    events.add(ev);
    keyView.apply(ev);
    stats.events++;
    stats.applyMs += performance.now() - t0;
  }, async () => {
    // The index first: what changes during the re-read comes again.
    const { index } = await getJSON('/mod/dashboard/api/whoami');
    await keyView.open(keyView.dir, true);
    return index;
  }, (s, err) => events.status(s, err));
  root.start(index);
  document.body.dataset.ready = 'true';
}

main().catch(err => flash(err instanceof EtcdError ? err.message : 'Dashboard failed to start: ' + err.message));
