package modcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
)

// errGone: the lock's (or the candidate's) queue entry is not there any
// more (it expired, or someone deleted it), or another candidate leads:
// the lease is lost. The errors that are it say which (kindError).
var errGone = errors.New("modcli: the queue entry is gone")

// kindError is errGone or errNotGranted (kind) with what happened.
type kindError struct {
	kind error
	why  string
	err  error // the answer that said so, if any
}

func (e *kindError) Error() string        { return e.why }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.err }

// gone is an errGone saying why.
func gone(why string, err error) error { return &kindError{kind: errGone, why: why, err: err} }

// entryGone is the errGone of a 404 answer.
func entryGone(resp *v2client.Response) error {
	err := answerError(resp)
	return gone("its queue entry is gone, expired or deleted ("+err.Error()+")", err)
}

// errNotGranted: a timed acquisition (timeout=N, or 0: one try) ran out
// of time: the module's plain-text verdict, or no member answered in time.
var errNotGranted = errors.New("modcli: not first in the queue")

// module is one lock or one election: /mod/v2/<kind>/<name>.
type module struct {
	m    *members
	kind string // "lock" or "leader"
	name string // cleaned, without leading or trailing slash
}

// cleanName is a lock or election name as its path goes on the wire:
// cleaned like a key, without the slashes around it.
func cleanName(name string) (string, error) {
	n := strings.Trim(path.Clean("/"+name), "/")
	if n == "" || n == "." {
		return "", fmt.Errorf("name %q: give a name, e.g. backups or jobs/nightly", name)
	}
	return n, nil
}

// uri is the request URI of the module with query q.
func (mo module) uri(q url.Values) string {
	parts := strings.Split(mo.name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	u := "/mod/v2/" + mo.kind + "/" + strings.Join(parts, "/")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// seconds is d in whole seconds, rounded up: the wire's TTLs and timeouts.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// waitQuery sets timeout= to what is left until deadline (0: one try),
// unless deadline is zero (wait as long as it takes).
func waitQuery(q url.Values, deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	left := max(time.Until(deadline), 0)
	q.Set("timeout", seconds(left))
}

// parseIndex reads the text body of an acquisition: the lock index.
func parseIndex(resp *v2client.Response) (uint64, error) {
	text := string(bytes.TrimSpace(resp.Body))
	n, err := strconv.ParseUint(text, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s answered %q, not a lock index", resp.Endpoint, text)
	}
	return n, nil
}

// wait sends a blocking acquisition (a lock's POST, a candidate's PUT)
// until a member answers it with an index, and returns that index.
// Repeating it on another member is safe: the value (a lock's --value, a
// candidate's name) rejoins the entry the first attempt queued. With a
// non-zero deadline, the member is asked to give up then (timeout=, what
// is left); its plain-text 500 at or past the deadline is errNotGranted.
// Before the deadline (or without one) that answer means the entry was
// lost while waiting (it expired, or was deleted): the wait queues again.
func (mo module) wait(ctx context.Context, method string, q url.Values, deadline time.Time, failed func(context.Context)) (uint64, error) {
	if !deadline.IsZero() {
		// The member answers at the deadline; a member that does not is
		// given a little more before the wait counts as failed.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(5*time.Second))
		defer cancel()
	}
	for {
		var oneTry bool
		resp, err := mo.m.until(ctx, func() v2client.Request {
			waitQuery(q, deadline)
			oneTry = q.Get("timeout") == "0"
			return v2client.Request{Method: method, Path: mo.uri(q), Blocking: true}
		}, failed)
		if err != nil && !deadline.IsZero() && ctx.Err() == context.DeadlineExceeded {
			return 0, &kindError{kind: errNotGranted, why: "no member answered in time: " + err.Error(), err: err}
		}
		if err != nil {
			return 0, err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return parseIndex(resp)
		case resp.StatusCode >= 500 && !isJSON(resp.Body):
			if oneTry || (!deadline.IsZero() && !time.Now().Before(deadline)) {
				err := answerError(resp)
				return 0, &kindError{kind: errNotGranted, why: err.Error(), err: err}
			}
			mo.m.log.Warn("the queue entry was lost while waiting; queueing again", "module", mo.kind, "name", mo.name, "answer", answerError(resp))
			if !sleep(ctx, minPause) {
				return 0, ctx.Err()
			}
			continue
		}
		return 0, answerError(resp)
	}
}

// once sends a request that does not block, to the current member, within
// the member's timeout. A 404 (etcd error 100) is errGone.
func (mo module) once(ctx context.Context, method string, q url.Values) (*v2client.Response, error) {
	resp, err := mo.m.send(ctx, v2client.Request{Method: method, Path: mo.uri(q)})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return resp, entryGone(resp)
	}
	if resp.StatusCode >= 300 {
		return resp, answerError(resp)
	}
	return resp, nil
}

// lockAcquire is POST /mod/v2/lock/<name>?ttl=&value=[&timeout=]. When
// the member the POST waits on fails, the entry it refreshed meanwhile is
// renewed at once by value through the next member, before the POST
// rejoins it there: that member's own refreshes start only half a TTL
// later, and the entry must not expire in between. (Only then: an entry
// renewed by the client while its POST hangs on a paused member would
// hold the queue with nobody to take the lock.)
func (mo module) lockAcquire(ctx context.Context, ttl time.Duration, value string, deadline time.Time) (uint64, error) {
	renew := url.Values{"ttl": {seconds(ttl)}, "value": {value}}
	failed := func(ctx context.Context) {
		// Not there (not queued yet, or gone: the POST queues again) is
		// no news; a member that fails is left for the next one.
		_, _ = mo.once(ctx, http.MethodPut, renew)
	}
	q := url.Values{"ttl": {seconds(ttl)}, "value": {value}}
	return mo.wait(ctx, http.MethodPost, q, deadline, failed)
}

// lockRenew is PUT /mod/v2/lock/<name>?ttl=&index=.
func (mo module) lockRenew(ctx context.Context, ttl time.Duration, index uint64) error {
	_, err := mo.once(ctx, http.MethodPut, url.Values{"ttl": {seconds(ttl)}, "index": {strconv.FormatUint(index, 10)}})
	return err
}

// lockRelease is DELETE /mod/v2/lock/<name>?index= (or ?value= for an
// entry whose index is not known: a waiter given up on).
func (mo module) lockRelease(ctx context.Context, index uint64, value string) error {
	q := url.Values{"value": {value}}
	if index != 0 {
		q = url.Values{"index": {strconv.FormatUint(index, 10)}}
	}
	_, err := mo.once(ctx, http.MethodDelete, q)
	return err
}

// campaign is PUT /mod/v2/leader/<name>?name=&ttl=[&timeout=]: it blocks
// until id leads.
func (mo module) campaign(ctx context.Context, id string, ttl time.Duration, deadline time.Time) (uint64, error) {
	q := url.Values{"name": {id}, "ttl": {seconds(ttl)}}
	return mo.wait(ctx, http.MethodPut, q, deadline, nil)
}

// leaderRenew repeats the campaign of a leader with timeout=0: it renews
// while id leads under index. Any other outcome is the leadership lost:
// another candidate first (the member then deletes the new entry), or a
// new entry of id's own with another index (the old one expired: someone
// else may have led in between).
func (mo module) leaderRenew(ctx context.Context, id string, ttl time.Duration, index uint64) error {
	q := url.Values{"name": {id}, "ttl": {seconds(ttl)}, "timeout": {"0"}}
	resp, err := mo.m.send(ctx, v2client.Request{Method: http.MethodPut, Path: mo.uri(q)})
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		got, err := parseIndex(resp)
		if err != nil {
			return err
		}
		if got != index {
			return gone(fmt.Sprintf("its queue entry expired or was deleted; the renewal was elected again under index %d", got), nil)
		}
		return nil
	case resp.StatusCode >= 500 && !isJSON(resp.Body):
		err := answerError(resp)
		return gone("another candidate leads ("+err.Error()+")", err)
	case resp.StatusCode == http.StatusNotFound:
		return entryGone(resp)
	}
	return answerError(resp)
}

// resign is DELETE /mod/v2/leader/<name>?name=.
func (mo module) resign(ctx context.Context, id string) error {
	_, err := mo.once(ctx, http.MethodDelete, url.Values{"name": {id}})
	return err
}

// leader is GET /mod/v2/leader/<name>: the leader's name, "" when there is
// none or the election never existed.
func (mo module) leader(ctx context.Context) (string, error) {
	resp, err := mo.once(ctx, http.MethodGet, nil)
	if errors.Is(err, errGone) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(resp.Body)), nil
}

// waitLeader is GET /mod/v2/leader/<name>?wait=true: it blocks until the
// leader is another name than when the member got the request, and
// returns the new one ("" for none). errGone: the election does not exist.
func (mo module) waitLeader(ctx context.Context) (string, error) {
	resp, err := mo.m.send(ctx, v2client.Request{Method: http.MethodGet, Path: mo.uri(url.Values{"wait": {"true"}}), Blocking: true})
	if err != nil {
		return "", err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return string(bytes.TrimSpace(resp.Body)), nil
	case resp.StatusCode == http.StatusNotFound:
		return "", entryGone(resp)
	}
	return "", answerError(resp)
}
