package pki_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
)

func TestParseValidity(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90d", 90 * 24 * time.Hour, false},
		{"1d", 24 * time.Hour, false},
		{"1y", 365 * 24 * time.Hour, false},
		{"10y", 3650 * 24 * time.Hour, false},
		{" 30d ", 30 * 24 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"", 0, true},
		{"0d", 0, true},
		{"-1d", 0, true},
		{"-5h", 0, true},
		{"0", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"ten years", 0, true},
		{"90", 0, true},
		{"300y", 0, true},
		{"99999999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := pki.ParseValidity(tt.in)
		if tt.err {
			if !errors.Is(err, pki.ErrValidity) {
				t.Errorf("ParseValidity(%q) = %v, %v; want ErrValidity", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseValidity(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatValidity(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{90 * pki.Day, "90 days"},
		{90*pki.Day - time.Second, "89 days"},
		{2 * pki.Day, "2 days"},
		{36 * time.Hour, "1 day"},
		{5*time.Hour + 20*time.Second, "5h0m0s"},
	}
	for _, tt := range tests {
		if got := pki.FormatValidity(tt.in); got != tt.want {
			t.Errorf("FormatValidity(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRenewalWarning(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name       string
		life, left time.Duration
		warn       bool
	}{
		{"managed 7-day, fresh", 7 * day, 7 * day, false},
		{"managed 7-day, 3 days left: before its renewal point", 7 * day, 3 * day, false},
		{"managed 7-day, 2 days left: past its renewal point", 7 * day, 2 * day, true},
		{"1-year, 40 days left", 365 * day, 40 * day, false},
		{"1-year, 29 days left", 365 * day, 29 * day, true},
		{"60-day, 25 days left", 60 * day, 25 * day, false},
		{"60-day, 19 days left", 60 * day, 19 * day, true},
		{"expired", 7 * day, -time.Hour, true},
	}
	for _, tt := range tests {
		notBefore, notAfter := now.Add(tt.left-tt.life), now.Add(tt.left)
		w := pki.RenewalWarning(notBefore, notAfter)
		if got := notAfter.Sub(now) < w; got != tt.warn {
			t.Errorf("%s: warn %v, want %v (threshold %v)", tt.name, got, tt.warn, w)
		}
	}
}
