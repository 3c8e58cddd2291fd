package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseSince_DurationsAndTimes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	loc := time.FixedZone("X", 2*3600)
	cases := map[string]time.Time{
		"10m":                       now.Add(-10 * time.Minute),
		"1h30m":                     now.Add(-90 * time.Minute),
		"0s":                        now,
		"2026-03-04T11:00:00Z":      time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC),
		"2026-03-04T11:00:00+01:00": time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC),
		"2026-03-04 13:30":          time.Date(2026, 3, 4, 11, 30, 0, 0, time.UTC),
		"2026-03-04":                time.Date(2026, 3, 3, 22, 0, 0, 0, time.UTC),
	}
	for in, want := range cases {
		got, err := parseSince(in, now, loc)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-5m", "yesterday", "10", "2026-13-01"} {
		if _, err := parseSince(bad, now, loc); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		} else if bad != "" && !strings.Contains(err.Error(), "duration") && !strings.Contains(err.Error(), "negative") {
			t.Errorf("parseSince(%q): %v does not say what to give", bad, err)
		}
	}
}

func TestEndedBefore(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for ts, want := range map[string]bool{
		"":                       false, // still running
		"2026-03-04T11:59:59Z":   true,
		"2026-03-04T12:00:00Z":   false,
		"2026-03-04T12:00:00.5Z": false,
	} {
		if got := endedBefore(ts, since); got != want {
			t.Errorf("endedBefore(%q) = %v, want %v", ts, got, want)
		}
	}
}

// FuzzParseSince: --since never panics; what it accepts is not after now
// when it is a duration.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"10m", "1h", "2026-03-04T11:00:00Z", "2026-03-04 13:30", "-1s", "9999999999h", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now, time.UTC)
		if err != nil {
			return
		}
		if _, derr := time.ParseDuration(strings.TrimSpace(s)); derr == nil && got.After(now) {
			t.Fatalf("duration %q gave %v, after now", s, got)
		}
	})
}
