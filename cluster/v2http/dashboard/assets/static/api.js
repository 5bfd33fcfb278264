// The etcd v2 API, as any client uses it, from the page's own origin (the
// browser presents the client certificate).

export class EtcdError extends Error {
  constructor(status, body) {
    const code = body && body.errorCode;
    const text = code !== undefined
      ? `etcd error ${code}: ${body.message}${body.cause ? ' (' + body.cause + ')' : ''}`
      : `HTTP ${status}: ${(body && body.message) || 'request failed'}`;
    super(text);
    this.status = status;
    this.errorCode = code;
    this.body = body;
  }
}

// keyURL is the /v2/keys URL of key with the query params.
export function keyURL(key, params) {
  const k = key.split('/').filter(s => s !== '').map(encodeURIComponent).join('/');
  const q = new URLSearchParams();
  for (const [name, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(name, String(v));
  }
  const qs = q.toString();
  return '/v2/keys/' + k + (qs ? '?' + qs : '');
}

// keys sends one /v2/keys request; form fields go in an urlencoded body.
// It resolves to {event, index} or throws EtcdError.
export async function keys(method, key, params, form, signal) {
  const init = { method, signal, cache: 'no-store', headers: {} };
  if (form) {
    const q = new URLSearchParams();
    for (const [name, v] of Object.entries(form)) if (v !== undefined && v !== null) q.set(name, String(v));
    init.body = q.toString();
    init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  const resp = await fetch(keyURL(key, params), init);
  const index = Number(resp.headers.get('X-Etcd-Index') || 0);
  let body = null;
  const text = await resp.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = { message: text.trim() }; }
  if (!resp.ok) throw new EtcdError(resp.status, body);
  return { event: body, index };
}

export async function getJSON(url, signal) {
  const resp = await fetch(url, { cache: 'no-store', signal });
  if (!resp.ok) throw new EtcdError(resp.status, { message: (await resp.text()).trim() });
  return resp.json();
}

// Watcher keeps a recursive watch of prefix open from index after, and
// calls onEvent for each event. It is etcd's long-poll watch
// (wait=true&recursive=true&waitIndex=N) with stream=true, so that one
// response carries event after event (one JSON object a line) instead of
// one request per event: a busy store costs one round trip per batch, not
// per write. When the response ends it asks again from the next index;
// when the history no longer holds that index (etcd error 401 "event index
// cleared") it calls onReset, which re-reads what it shows and returns the
// X-Etcd-Index to continue after.
export class Watcher {
  constructor(prefix, onEvent, onReset, onStatus) {
    this.prefix = prefix;
    this.onEvent = onEvent;
    this.onReset = onReset;
    this.onStatus = onStatus || (() => {});
    this.ctl = null;
    this.stopped = false;
  }

  start(after) {
    this.next = after + 1;
    this.onStatus('live'); // a watch in flight is live until it fails
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.ctl) this.ctl.abort();
  }

  async loop() {
    let backoff = 500;
    let failing = false;
    while (!this.stopped) {
      this.ctl = new AbortController();
      try {
        const url = keyURL(this.prefix, { wait: 'true', recursive: 'true', stream: 'true', waitIndex: this.next });
        const resp = await fetch(url, { cache: 'no-store', signal: this.ctl.signal });
        if (!resp.ok) {
          const text = await resp.text();
          let body;
          try { body = JSON.parse(text); } catch { body = { message: text.trim() }; }
          throw new EtcdError(resp.status, body);
        }
        if (failing) { failing = false; this.onStatus('live'); }
        backoff = 500;
        await this.read(resp.body);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof EtcdError && err.errorCode === 401) {
          // The history moved past us: one re-read, then go on from it.
          this.onStatus('resync');
          try { this.next = (await this.onReset()) + 1; this.onStatus('live'); continue; } catch (e) { err = e; }
        }
        failing = true;
        this.onStatus('error', err);
        await new Promise(r => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  // read delivers the events of one streamed response until it ends.
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line);
        if (!ev.node) continue;
        this.next = ev.node.modifiedIndex + 1;
        this.onEvent(ev);
      }
    }
  }
}

// nodeInfo is the part of a store node the views keep.
export function nodeInfo(n) {
  return {
    key: n.key, dir: !!n.dir, value: n.value, ttl: n.ttl || 0, expiration: n.expiration || null,
    createdIndex: n.createdIndex, modifiedIndex: n.modifiedIndex,
  };
}

const removing = new Set(['delete', 'expire', 'compareAndDelete']);

// Tree is a flat, live copy of the leaves below prefix: load() reads it
// once (recursive, sorted), apply(event) keeps it current, and onChange
// hears which keys changed. It never re-reads per event.
export class Tree {
  constructor(prefix, onChange) {
    this.prefix = prefix;
    this.leaves = new Map();
    this.onChange = onChange;
    this.index = 0;
  }

  // load reads the tree. hint, from /mod/dashboard/api/whoami, may say
  // that the prefix does not exist (yet): then there is nothing to read
  // (and no 404 to log), and the watch starts after hint.index.
  async load(hint) {
    this.leaves.clear();
    if (hint && !hint.exists) {
      this.index = hint.index;
      this.onChange(null);
      return this.index;
    }
    try {
      const { event, index } = await keys('GET', this.prefix, { recursive: 'true', sorted: 'true' });
      const walk = n => {
        if (n.dir) (n.nodes || []).forEach(walk);
        else this.leaves.set(n.key, nodeInfo(n));
      };
      if (event && event.node) walk(event.node);
      this.index = index;
    } catch (err) {
      if (!(err instanceof EtcdError && err.errorCode === 100)) throw err;
      this.index = err.body.index || 0; // not there yet: empty
    }
    this.onChange(null);
    return this.index;
  }

  apply(ev) {
    const n = ev.node;
    if (!n) return;
    const changed = [];
    if (removing.has(ev.action)) {
      if (this.leaves.delete(n.key)) changed.push(n.key);
      if (n.dir || (ev.prevNode && ev.prevNode.dir)) {
        const p = n.key + '/';
        for (const k of this.leaves.keys()) if (k.startsWith(p)) { this.leaves.delete(k); changed.push(k); }
      }
    } else if (!n.dir) {
      this.leaves.set(n.key, nodeInfo(n));
      changed.push(n.key);
    }
    if (changed.length) this.onChange(changed);
  }
}
