package api

import (
	"testing"
	"time"

	"github.com/skiffml/skiff/store"
)

func TestDueFirings(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cases := []struct {
		name string
		rr   store.RecurringRun
		now  time.Time
		want []time.Time
	}{
		{"periodic: none due yet", store.RecurringRun{IntervalSeconds: 60, CreatedAt: t0, EnabledAt: t0}, at(59 * time.Second), nil},
		{"periodic: catch up", store.RecurringRun{IntervalSeconds: 60, CreatedAt: t0, EnabledAt: t0}, at(3*time.Minute + time.Second),
			[]time.Time{at(time.Minute), at(2 * time.Minute), at(3 * time.Minute)}},
		{"periodic: after the last firing", store.RecurringRun{IntervalSeconds: 60, CreatedAt: t0, EnabledAt: t0, LastFired: at(2 * time.Minute)},
			at(3 * time.Minute), []time.Time{at(3 * time.Minute)}},
		{"periodic: no catchup fires the latest", store.RecurringRun{IntervalSeconds: 60, CreatedAt: t0, EnabledAt: t0, NoCatchup: true},
			at(10 * time.Minute), []time.Time{at(10 * time.Minute)}},
		{"periodic: start time counts, end time bounds", store.RecurringRun{IntervalSeconds: 60, CreatedAt: t0, EnabledAt: t0,
			StartTime: at(5 * time.Minute), EndTime: at(6*time.Minute + time.Second)}, at(time.Hour), []time.Time{at(5 * time.Minute), at(6 * time.Minute)}},
		{"periodic: bounded catch-up keeps the latest", store.RecurringRun{IntervalSeconds: 1, CreatedAt: t0, EnabledAt: t0}, at(time.Hour), nil},
		{"periodic: nothing missed while disabled", store.RecurringRun{IntervalSeconds: 60, CreatedAt: t0, EnabledAt: at(time.Hour)},
			at(time.Hour + time.Minute), []time.Time{at(time.Hour + time.Minute)}},
		{"cron with seconds", store.RecurringRun{Cron: "0 */10 * * * *", CreatedAt: t0, EnabledAt: t0}, at(25 * time.Minute),
			[]time.Time{at(10 * time.Minute), at(20 * time.Minute)}},
		{"cron, five fields, no catchup", store.RecurringRun{Cron: "*/5 * * * *", CreatedAt: t0, EnabledAt: t0, NoCatchup: true}, at(21 * time.Minute),
			[]time.Time{at(20 * time.Minute)}},
		{"cron: start time on a firing counts", store.RecurringRun{Cron: "@hourly", CreatedAt: t0, EnabledAt: t0, StartTime: at(2 * time.Hour)},
			at(2 * time.Hour), []time.Time{at(2 * time.Hour)}},
		{"cron: past its end", store.RecurringRun{Cron: "@hourly", CreatedAt: t0, EnabledAt: t0, EndTime: at(30 * time.Minute)}, at(5 * time.Hour), nil},
	}
	for _, c := range cases {
		got, err := dueFirings(c.rr, c.now, MaxCatchup)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.name == "periodic: bounded catch-up keeps the latest" {
			if len(got) != MaxCatchup || !got[len(got)-1].Equal(at(time.Hour)) {
				t.Errorf("%s: %d firings, last %v", c.name, len(got), got[len(got)-1])
			}
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if !got[i].Equal(c.want[i]) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
	// A long cron catch-up is bounded too.
	got, err := dueFirings(store.RecurringRun{Cron: "* * * * * *", CreatedAt: t0, EnabledAt: t0}, at(30*24*time.Hour), MaxCatchup)
	if err != nil || len(got) != MaxCatchup || !got[MaxCatchup-1].Equal(at(30*24*time.Hour)) {
		t.Fatalf("per-second cron after 30 days: %d firings (%v)", len(got), err)
	}
}
