package bench

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is one kind of load on a target.
type workload interface {
	// setup writes what the load needs (keys to read or refresh).
	setup(ctx context.Context, p *Progress) error
	// run applies the load until the run is over.
	run(ctx context.Context, c *counters) (*tally, time.Duration, error)
	close()
}

func newWorkload(tg Target, cfg Config) (workload, error) {
	if cfg.Workload == "dns" {
		return newDNSLoad(tg, cfg)
	}
	c, err := tg.dial(cfg.Clients)
	if err != nil {
		return nil, err
	}
	if cfg.Workload == "watch" {
		return &watchLoad{cfg: cfg, conn: c}, nil
	}
	return newKVLoad(cfg, c), nil
}

// kvLoad is put, get and refresh: one request to one key per operation,
// the keys taken in turn.
type kvLoad struct {
	cfg    Config
	conn   *conn
	paths  []string // /v2/keys<prefix>/k<i>
	method string
	query  string
	form   []byte
	want   []int
	value  []byte // the setup's form
	reg    []byte // a paced refresh's form for a key found expired
}

func newKVLoad(cfg Config, c *conn) *kvLoad {
	l := &kvLoad{cfg: cfg, conn: c, paths: make([]string, cfg.Keys)}
	for i := range l.paths {
		l.paths[i] = "/v2/keys" + cfg.Prefix + "/k" + strconv.Itoa(i)
	}
	value := []byte("value=" + strings.Repeat("x", cfg.ValueSize))
	ttl := strconv.Itoa(int(cfg.TTL / time.Second))
	switch cfg.Workload {
	case "put":
		l.method, l.form, l.want = http.MethodPut, value, []int{http.StatusOK, http.StatusCreated}
	case "get":
		// quorum=true is what etcd needs to read linearizably; Cairn
		// reads so by default and takes quorum=true as the same, so
		// both get the same request. etcd ignores stale=true: its reads
		// are local unless asked otherwise.
		l.method, l.query, l.want = http.MethodGet, "?quorum=true", []int{http.StatusOK}
		if cfg.Stale {
			l.query = "?stale=true"
		}
		l.value = value
	case "refresh":
		l.method, l.query, l.want = http.MethodPut, "?refresh=true&prevExist=true&ttl="+ttl, []int{http.StatusOK}
		l.value = []byte(string(value) + "&ttl=" + ttl)
		if cfg.Interval > 0 {
			l.reg = l.value
			l.value = []byte(string(value) + "&ttl=" + strconv.Itoa(int((cfg.TTL+pacedSetupSlack)/time.Second)))
		}
	}
	return l
}

func (l *kvLoad) close() { l.conn.close() }

// setup writes every key once, for get and refresh, with up to 64
// requests in flight (128 for a paced refresh).
func (l *kvLoad) setup(ctx context.Context, p *Progress) error {
	if l.value == nil {
		return nil
	}
	p.printf("setup: writing %d keys under %s\n", len(l.paths), l.cfg.Prefix)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	writers := 64
	if l.cfg.Interval > 0 {
		writers = 128 // 100,000 registrations
	}
	for range min(writers, max(l.cfg.Clients, 8), len(l.paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(l.paths)) || ctx.Err() != nil {
					return
				}
				// A write tried again, up to 3 times: one connection
				// closed under 100,000 writes must not end the run.
				var err error
				for range 3 {
					url := l.conn.endpoint() + l.paths[i]
					if _, err = l.conn.do(ctx, l.conn.hc, http.MethodPut, url, l.value, nil, http.StatusOK, http.StatusCreated); err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.printf("setup: %d keys written in %.1fs\n", len(l.paths), time.Since(began).Seconds())
	return nil
}

func (l *kvLoad) run(ctx context.Context, c *counters) (*tally, time.Duration, error) {
	keys := uint64(len(l.paths))
	return closedLoop(ctx, l.cfg, func(int) (op, func(), error) {
		return func(ctx context.Context, n uint64) error {
			url := l.conn.endpoint() + l.paths[n%keys] + l.query
			_, err := l.conn.do(ctx, l.conn.hc, l.method, url, l.form, nil, l.want...)
			return err
		}, func() {}, nil
	}, c)
}
