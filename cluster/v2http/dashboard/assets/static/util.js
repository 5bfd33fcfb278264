// Small DOM and formatting helpers. Data from the store is only ever put
// in the page as text (textContent), never as HTML.

export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function $(sel) { return document.querySelector(sel); }

// clockSkew is server time minus browser time, in ms, from the cluster
// endpoint's "now": countdowns use the server's clock.
let clockSkew = 0;
export function setServerNow(iso) {
  const t = Date.parse(iso);
  if (!Number.isNaN(t)) clockSkew = t - Date.now();
}
export function serverNow() { return Date.now() + clockSkew; }

export function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 0) return '-' + fmtDuration(-ms);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400 * 2) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd';
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString();
}

export function truncate(s, n) {
  if (s === undefined || s === null) return '';
  return s.length > n ? s.slice(0, n - 1) + '\u2026' : s;
}

let flashTimer = 0;
// flash shows a message above the views: kind is 'error' or 'ok'.
// Errors stay until the next message or a click; others fade.
export function flash(msg, kind = 'error') {
  const f = $('#flash');
  f.textContent = msg;
  f.className = kind;
  f.hidden = false;
  clearTimeout(flashTimer);
  if (kind !== 'error') flashTimer = setTimeout(() => { f.hidden = true; }, 4000);
}
export function clearFlash() { $('#flash').hidden = true; }

// schedule coalesces calls to fn into one per animation frame.
export function schedule(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fn(); });
  };
}

// pager renders page buttons into el for n items, size per page.
export function pager(el, n, size, page, go) {
  el.replaceChildren();
  const pages = Math.max(1, Math.ceil(n / size));
  if (pages <= 1) return 0;
  page = Math.min(page, pages - 1);
  el.append(
    h('button', { type: 'button', disabled: page === 0, onclick: () => go(page - 1) }, '\u2039 Prev'),
    h('span', { class: 'muted' }, ` ${page * size + 1}\u2013${Math.min(n, (page + 1) * size)} of ${n} `),
    h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => go(page + 1) }, 'Next \u203a'),
  );
  return page;
}
