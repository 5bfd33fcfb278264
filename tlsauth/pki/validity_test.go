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
