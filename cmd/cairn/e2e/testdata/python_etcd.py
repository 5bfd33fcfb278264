"""Drives python-etcd (Debian's python3-etcd 0.4.5) against one Cairn member
over mutual TLS. Run by TestPythonEtcd (python_etcd_test.go):

    python3 python_etcd.py HOST PORT CA_FILE CERT_FILE KEY_FILE PREFIX

Every check prints "ok <name>" when it passes; the first that fails raises,
which prints a traceback and exits non-zero. The test compares the names
printed with the list it expects, so that a check cannot be skipped quietly.
At the end the script writes PREFIX/done = "yes", which the test reads back
through its own client.
"""

import sys
import threading
import time

import etcd

host, port, ca, cert, key, prefix = sys.argv[1:7]
port = int(port)


def ok(name):
    print("ok", name, flush=True)


def expect(exc, fn, *args, **kw):
    """fn(*args, **kw) must raise exc; returns the exception."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s(%r, %r) did not raise %s" % (fn.__name__, args, kw, exc.__name__))


def until(what, cond, timeout=15.0):
    """Polls cond every 50 ms until it is true or timeout passes."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s" % (what, timeout))
        time.sleep(0.05)


def client(**kw):
    return etcd.Client(host=host, port=port, protocol="https",
                       cert=(cert, key), ca_cert=ca, read_timeout=15, **kw)


c = client()
P = prefix

# Cluster endpoints: /version, /v2/machines, /v2/members + /v2/stats/self.
assert c.version == "2.3.8", c.version
assert c.machines == ["https://%s:%d" % (host, port)], c.machines
assert c.leader["clientURLs"] == ["https://%s:%d" % (host, port)], c.leader
ok("version-machines-leader")

# Without a client certificate there is no connection at all.
anon = etcd.Client(host=host, port=port, protocol="https", ca_cert=ca, read_timeout=5)
expect(etcd.EtcdConnectionFailed, anon.read, P)
ok("mtls-required")

# Writes and reads.
r = c.write(P + "/a", "one")
assert (r.action, r.value, r.newKey) == ("set", "one", True), r
assert r.createdIndex == r.modifiedIndex and r.etcd_index >= r.modifiedIndex, r
assert c.read(P + "/a").value == "one"
assert c.get(P + "/a").value == "one"
r = c.set(P + "/a", "uno")
assert (r.action, r.value, r._prev_node.value) == ("set", "uno", "one"), r
assert (P + "/a") in c and (P + "/nope") not in c
e = expect(etcd.EtcdKeyNotFound, c.read, P + "/nope")
assert e.payload["errorCode"] == 100, e.payload
ok("write-read")

# TTL: set with a TTL, refresh it without a change, watch it expire.
r = c.write(P + "/ttl", "x", ttl=30)
assert r.ttl == 30 and r.expiration is not None, r
r = c.refresh(P + "/ttl", ttl=60)
assert r.ttl == 60 and r.value == "x", r
r = c.write(P + "/short", "gone soon", ttl=1)
idx = r.modifiedIndex
until("key with ttl=1 to expire", lambda: (P + "/short") not in c)
w = c.watch(P + "/short", index=idx + 1)
assert w.action == "expire" and w._prev_node.value == "gone soon", w
ok("ttl")

# Compare-and-swap: on the previous value, on the previous index, update().
r = c.test_and_set(P + "/a", "two", "uno")
assert (r.action, r.value) == ("compareAndSwap", "two"), r
expect(etcd.EtcdCompareFailed, c.test_and_set, P + "/a", "three", "uno")
assert c.read(P + "/a").value == "two"
stale = r.modifiedIndex
r = c.write(P + "/a", "four", prevIndex=r.modifiedIndex)
assert (r.action, r.value) == ("compareAndSwap", "four"), r
expect(etcd.EtcdCompareFailed, c.write, P + "/a", "five", prevIndex=stale)
o = c.read(P + "/a")
o.value = "six"
r = c.update(o)
assert r.value == "six", r
expect(etcd.EtcdCompareFailed, c.update, o)  # o's index is stale now
# compare-and-delete
expect(etcd.EtcdCompareFailed, c.delete, P + "/a", prevValue="nope")
r = c.delete(P + "/a", prevValue="six")
assert r.action == "compareAndDelete", r
ok("compare-and-swap")

# Create (prevExist=false) and update (prevExist=true).
r = c.write(P + "/new", "first", prevExist=False)
assert (r.action, r.value) == ("create", "first"), r
e = expect(etcd.EtcdAlreadyExist, c.write, P + "/new", "second", prevExist=False)
assert e.payload["errorCode"] == 105, e.payload
r = c.write(P + "/new", "second", prevExist=True)
assert r.action == "update", r
expect(etcd.EtcdKeyNotFound, c.write, P + "/missing", "x", prevExist=True)
ok("create")

# In-order keys (POST): increasing names, read back sorted.
keys = [c.write(P + "/queue", "job%d" % i, append=True).key for i in range(3)]
assert keys == sorted(keys) and len(set(keys)) == 3, keys
r = c.read(P + "/queue", sorted=True)
assert [n.key for n in r.leaves] == keys, list(r.leaves)
assert [n.value for n in r.leaves] == ["job0", "job1", "job2"]
ok("in-order-keys")

# Recursive reads, directories and their errors.
for k in ("x/1", "x/2", "y/deep/3"):
    c.write(P + "/tree/" + k, k)
r = c.read(P + "/tree", recursive=True, sorted=True)
assert [n.key for n in r.leaves] == [P + "/tree/" + k for k in ("x/1", "x/2", "y/deep/3")], [n.key for n in r.leaves]
r = c.read(P + "/tree", sorted=True)
assert [(n.key, n.dir) for n in r.children] == [(P + "/tree/x", True), (P + "/tree/y", True)]
c.write(P + "/emptydir", None, dir=True)
assert c.read(P + "/emptydir").dir
expect(etcd.EtcdNotFile, c.write, P + "/tree", "a value on a dir")
ok("recursive-read")

# Watches: from an index in the past (history), one that waits for the next
# change, a recursive one, eternal_watch, and a timeout.
base = c.write(P + "/w", "w0").modifiedIndex
c.write(P + "/w", "w1")
c.write(P + "/w", "w2")
assert c.watch(P + "/w", index=base + 1).value == "w1"
assert c.watch(P + "/w", index=base + 2).value == "w2"
got = {}


def wait_next(idx):
    got["r"] = client().watch(P + "/w", index=idx)


nxt = c.read(P + "/w").etcd_index + 1
t = threading.Thread(target=wait_next, args=(nxt,))
t.start()
c.write(P + "/w", "w3")
t.join(20)
assert not t.is_alive() and got["r"].value == "w3", got
c.write(P + "/tree/x/1", "changed")
r = c.watch(P + "/tree", index=c.read(P + "/tree/x/1").modifiedIndex, recursive=True)
assert (r.key, r.value) == (P + "/tree/x/1", "changed"), r
gen = c.eternal_watch(P + "/w", index=base + 1)
assert [next(gen).value for _ in range(3)] == ["w1", "w2", "w3"]
expect(etcd.EtcdWatchTimedOut, c.watch, P + "/w", timeout=1)
ok("watch-index")

# Deletes: a key, a dir that is not empty, recursively.
r = c.delete(P + "/new")
assert r.action == "delete" and r._prev_node.value == "second", r
expect(etcd.EtcdKeyNotFound, c.read, P + "/new")
expect(etcd.EtcdNotFile, c.delete, P + "/emptydir")  # a dir needs dir=True
c.delete(P + "/emptydir", dir=True)
expect(etcd.EtcdDirNotEmpty, c.delete, P + "/tree", dir=True)
r = c.delete(P + "/tree", recursive=True)
assert r.action == "delete" and r.dir, r
expect(etcd.EtcdKeyNotFound, c.read, P + "/tree")
ok("delete")

# python-etcd's lock recipe: in-order keys under /_locks with a TTL.
lock = etcd.Lock(c, "py-" + P.strip("/").replace("/", "-"))
lock.acquire(lock_ttl=30, timeout=10)
assert lock.is_acquired
other = etcd.Lock(client(), lock.name)
assert not other.acquire(blocking=False)
lock.release()
assert other.acquire(blocking=False, lock_ttl=30)
other.release()
ok("lock-recipe")

c.write(P + "/done", "yes")
ok("done")
