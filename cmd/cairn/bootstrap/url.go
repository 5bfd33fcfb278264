package bootstrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// A token is the key directory <prefix>/<token> of a discovery cluster;
// its URL is the directory's /v2/keys URL on one of its members.

// DefaultPrefix is the key directory of the tokens cairn discovery new
// makes. It starts with '_', so listings of / do not show it (as etcd
// 0.4's /_etcd/registry); it is not Cairn's own node-only /_cairn.
const DefaultPrefix = "/_discovery"

// sizeKey is the token's size key, below the token directory.
const sizeKey = "_config/size"

// ParseURL splits a discovery URL into the endpoint of the discovery
// cluster (https://host:port) and the token's key directory.
func ParseURL(raw string) (endpoint, dir string, err error) {
	u, err := url.Parse(raw)
	bad := func() (string, string, error) {
		return "", "", fmt.Errorf("discovery URL %q: want https://HOST:PORT/v2/keys/<prefix>/<token>, as cairn discovery new prints it", raw)
	}
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return bad()
	}
	dir, ok := strings.CutPrefix(u.Path, "/v2/keys/")
	if !ok || strings.Trim(dir, "/") == "" {
		return bad()
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		u.Host = net.JoinHostPort(u.Host, "443")
	}
	return "https://" + u.Host, v2client.CanonicalKey(strings.TrimSuffix(dir, "/")), nil
}

// NewToken creates a token for size members below prefix through the
// first endpoint of c that answers, and returns its URL (naming that
// endpoint).
func NewToken(ctx context.Context, c *v2client.Client, prefix string, size int) (string, error) {
	if size < 1 {
		return "", fmt.Errorf("--size %d: a cluster has at least 1 member (3 or 5 tolerate failures)", size)
	}
	if !strings.HasPrefix(prefix, "/") || strings.Trim(prefix, "/") == "" {
		return "", fmt.Errorf("--prefix %q: want a key directory such as %s", prefix, DefaultPrefix)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	dir := v2client.CanonicalKey(path.Join(prefix, hex.EncodeToString(b[:])))
	var errs []error
	for _, ep := range c.Endpoints() {
		one, err := c.WithEndpoints(ep)
		if err != nil {
			return "", err
		}
		_, err = one.Set(ctx, path.Join(dir, sizeKey), strconv.Itoa(size), v2client.SetOptions{PrevExist: v2client.PrevNoExist})
		if err == nil {
			return ep + "/v2/keys" + dir, nil
		}
		var se *store.Error
		if errors.As(err, &se) || ctx.Err() != nil {
			return "", fmt.Errorf("create the token %s: %w", dir, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	return "", fmt.Errorf("create a token: no endpoint answered: %w", errors.Join(errs...))
}
