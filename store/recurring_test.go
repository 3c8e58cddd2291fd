package store

import (
	"testing"
	"time"
)

func TestRecurringRun_Commands(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := t.Context()
	rr := RecurringRun{ID: "rr1", Namespace: "team", Name: "nightly", PipelineSpec: []byte(`"name: p"`), Cron: "0 0 * * *",
		MaxConcurrency: 1, Enabled: true, CreatedAt: t0}
	mustApply := func(c Command, rejected bool) {
		t.Helper()
		res, err := s.Apply(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if (len(res.Rejected) > 0) != rejected {
			t.Fatalf("%T: rejected %+v, want rejected=%v", c, res.Rejected, rejected)
		}
	}
	mustApply(PutRecurringRun{Create: &rr, Time: t0}, false)
	mustApply(PutRecurringRun{Create: &rr, Time: t0}, true) // duplicate id
	bad := rr
	bad.ID, bad.IntervalSeconds = "rr2", 60 // both cron and interval
	mustApply(PutRecurringRun{Create: &bad, Time: t0}, true)

	got, err := s.GetRecurringRun("rr1")
	if err != nil || !got.Enabled || !got.EnabledAt.Equal(t0) {
		t.Fatalf("get: %+v %v", got, err)
	}
	t1 := t0.Add(24 * time.Hour)
	mustApply(RecordRecurringTrigger{ID: "rr1", Scheduled: t1, RunID: "run-1"}, false)
	mustApply(RecordRecurringTrigger{ID: "rr1", Scheduled: t1, RunID: "run-1"}, true) // the same firing twice
	mustApply(RecordRecurringTrigger{ID: "rr1", Scheduled: t0, RunID: "run-0"}, true) // an older one

	mustApply(PutRecurringRun{ID: "rr1", Enabled: false, Time: t1}, false)
	t2 := t1.Add(time.Hour)
	mustApply(PutRecurringRun{ID: "rr1", Enabled: true, Time: t2}, false)
	got, _ = s.GetRecurringRun("rr1")
	if !got.Enabled || !got.EnabledAt.Equal(t2) || !got.LastFired.Equal(t1) || got.LastRunID != "run-1" {
		t.Fatalf("after disable/enable: %+v", got)
	}
	if l, err := s.ListRecurringRuns("team"); err != nil || len(l) != 1 {
		t.Fatalf("list team: %v %v", l, err)
	}
	if l, _ := s.ListRecurringRuns("other"); len(l) != 0 {
		t.Fatalf("list other: %v", l)
	}
	mustApply(DeleteRecurringRun{ID: "rr1"}, false)
	mustApply(DeleteRecurringRun{ID: "rr1"}, true)
	mustApply(PutRecurringRun{ID: "rr1", Enabled: true, Time: t2}, true)
}
