package discovery

import (
	"fmt"
	"path"
)

// Validate checks a write to the key space before it is proposed, for
// cluster/v2http's Config.ValidateWrite: a non-directory write at or below
// Dir must hold a valid record (ParseRecord) at a key that makes a DNS name.
// Directories, keys outside Dir (other zones under Prefix, SkyDNS's own
// /skydns/config) and refreshes (which keep the stored value and are not
// validated by the API) pass. For a POST, key is the directory the in-order
// key is created in. The error names the field or the key.
func (c Config) Validate(key, value string, dir bool) error {
	if dir {
		return nil
	}
	l := c.layout()
	key = path.Clean("/" + key)
	if _, ok := l.rel(key); !ok {
		return nil
	}
	if _, ok := l.name(key); !ok {
		return fmt.Errorf("discovery: key %q has no DNS name: a segment is over %d bytes or the name over %d", key, maxLabel, maxName)
	}
	_, err := ParseRecord(value)
	return err
}
