package modcli

// The help of cairn lock and cairn elect (package main wires the commands).
const (
	LockHelp = `Acquire the distributed lock NAME (POST /mod/v2/lock/NAME: a fair queue,
first come first served), run CMD while holding it, and release it when CMD
exits. cairn lock exits with CMD's status.

CMD gets the lock's index, a fencing token that only grows from one holder to
the next, in CAIRN_LOCK_INDEX (and the name in CAIRN_LOCK_NAME): a resource
that records the highest index it has seen and refuses writes with a lower
one is safe even from a holder that lost the lock without knowing it.

The lock is renewed about every ttl/3 while CMD runs, on another member when
one fails. When it is lost (its entry expired or was deleted, or no renewal
succeeded within --ttl) CMD's process group gets SIGTERM, then SIGKILL after
--grace, and cairn lock exits 125 saying why. SIGINT, SIGTERM and SIGHUP are
forwarded to CMD (it runs in its own process group); the lock is released
once CMD has exited. Interrupted while waiting, nothing runs.

Exit status: CMD's (128+N if signal N ended it); 125 when cairn failed (lock
lost, --timeout passed, bad arguments, no member answered); 126 when CMD
could not be run, 127 when it was not found.

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`

	LockExample = `  cairn lock backups --data-dir /tmp/cairn-dev -- sh -c 'echo "backup with token $CAIRN_LOCK_INDEX"'
  cairn lock jobs/nightly --ttl 30s --timeout 1m -- ./nightly.sh
  cairn lock deploy --timeout 0 -- make deploy     # fail at once if someone holds it`

	ElectHelp = `Campaign in the leader election NAME (PUT /mod/v2/leader/NAME) as --name ID,
wait until elected, and lead: renewed about every ttl/3, on another member
when one fails.

With CMD, run it while leading (CAIRN_ELECTION, CAIRN_LEADER_ID and
CAIRN_LEADER_INDEX, the fencing token, in its environment), and resign when
it exits; the exit status is CMD's, as with cairn lock. Leadership lost (its
entry expired or was deleted, another candidate leads, or no renewal
succeeded within --ttl): CMD gets SIGTERM, then SIGKILL after --grace, and
cairn elect exits 125.

Without CMD, print "elected ID index N" once elected and lead until SIGINT or
SIGTERM, then resign and exit 0 (125 if leadership is lost meanwhile).

With --observe, campaign for no one: print the leader's name, then each new
leader's as it changes, one line each, until interrupted (a time without a
leader is logged to stderr, not printed).

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`

	ElectExample = `  cairn elect scheduler --name "$(hostname)" --data-dir /tmp/cairn-dev -- ./scheduler
  cairn elect scheduler --name n2 --ttl 10s          # print "elected n2 index N", lead until Ctrl+C
  cairn elect scheduler --observe                    # one line per new leader`
)
