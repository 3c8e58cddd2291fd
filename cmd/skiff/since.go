package main

import (
	"fmt"
	"strings"
	"time"
)

// sinceLayouts are the times --since takes, besides a duration.
var sinceLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// parseSince reads --since: a duration back from now (10m, 1h30m) or a
// time (RFC 3339, or a date and time without zone, read in loc).
func parseSince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty: give a duration (10m, 2h) or a time (2026-01-02T15:04:05Z)")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a negative duration", s)
		}
		return now.Add(-d), nil
	}
	for i, layout := range sinceLayouts {
		var t time.Time
		var err error
		if i == 0 {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, loc)
		}
		if err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: not a duration (10m, 2h) or a time (2026-01-02T15:04:05Z, 2026-01-02 15:04)", s)
}

// endedBefore reports whether a task's last attempt, which finished at
// finishedAt (RFC 3339; "" while it runs), ended before since.
func endedBefore(finishedAt string, since time.Time) bool {
	if finishedAt == "" || since.IsZero() {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, finishedAt)
	return err == nil && t.Before(since)
}
