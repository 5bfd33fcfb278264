package pki

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day and Year are the units of ParseValidity's "d" and "y" suffixes. A
// year is 365 days: certificate lifetimes are counted in days, and a leap
// day more or less does not matter to an operator asking for "1y".
const (
	Day  = 24 * time.Hour
	Year = 365 * Day
)

// ParseValidity reads a certificate lifetime: a whole number of days or
// years ("90d", "1y", "10y") or a Go duration ("36h", "1h30m"). It must be
// positive.
func ParseValidity(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty; give e.g. 90d, 1y or 720h", ErrValidity)
	}
	var d time.Duration
	if unit, ok := map[byte]time.Duration{'d': Day, 'y': Year}[s[len(s)-1]]; ok {
		n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: want a whole number before %q (90d, 1y) or a Go duration (720h)", ErrValidity, s, s[len(s)-1:])
		}
		if n > math.MaxInt64/int64(unit) {
			return 0, fmt.Errorf("%w: %q is too long (at most about 290 years)", ErrValidity, s)
		}
		d = time.Duration(n) * unit
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%w: %q: want 90d, 1y or a Go duration such as 720h", ErrValidity, s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%w, not %q", ErrValidity, s)
	}
	return d, nil
}

// FormatValidity writes d the way an operator reads a certificate
// lifetime: whole days from one day on ("90 days"), else hours and minutes.
func FormatValidity(d time.Duration) string {
	switch {
	case d >= 2*Day:
		return strconv.FormatInt(int64(d/Day), 10) + " days"
	case d >= Day:
		return "1 day"
	}
	return d.Round(time.Minute).String()
}

// When a certificate needs renewing. Managed certificates renew when
// RenewalWindowRatio of their lifetime is left (tlsauth/managed gives it
// to certmagic), so a 7-day one renews with 2⅓ days left; a certificate
// that lives longer than LongLived is due LongLivedWarning before it
// expires, as operators of a manual PKI expect.
const (
	RenewalWindowRatio = 1.0 / 3
	LongLived          = 90 * Day
	LongLivedWarning   = 30 * Day
)

// RenewalWarning is how close to its expiry a certificate valid from
// notBefore to notAfter is past its renewal point, and so worth a warning:
// RenewalWindowRatio of its lifetime, or LongLivedWarning for one that
// lives longer than LongLived.
func RenewalWarning(notBefore, notAfter time.Time) time.Duration {
	life := notAfter.Sub(notBefore)
	if life > LongLived {
		return LongLivedWarning
	}
	return time.Duration(float64(life) * RenewalWindowRatio)
}
