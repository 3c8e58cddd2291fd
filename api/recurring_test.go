package api_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var rt0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func (h *harness) step(want int) {
	h.t.Helper()
	n, err := h.srv.ScheduleRecurring(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if n != want {
		h.t.Fatalf("scheduler step fired %d runs, want %d", n, want)
	}
}

// recurringRuns returns the runs created by recurring run id, oldest first.
func (h *harness) recurringRuns(id string) []store.Run {
	h.t.Helper()
	all, err := h.st.ListRunsBy(store.RunFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []store.Run
	for i := len(all) - 1; i >= 0; i-- {
		if m, err := h.st.RunMetaFor(all[i].RequestID); err == nil && m.RecurringRunID == id {
			out = append(out, all[i])
		}
	}
	return out
}

func TestRecurringRuns_PeriodicCatchUpAndMaxConcurrency(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: rt0}
	h := newHarness(t, harnessOpts{sim: slowSim(), clock: clk.now})
	rr := h.must(200, "POST", "/apis/v2beta1/recurringruns", h.admin, map[string]any{
		"display_name": "every-minute", "pipeline_spec": slowPipeline, "max_concurrency": "2",
		"trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": "60"}},
	}).m(t)
	id := rr["recurring_run_id"].(string)
	if rr["status"] != "ENABLED" || rr["max_concurrency"] != "2" || rr["created_at"] != rt0.Format(time.RFC3339) {
		t.Fatalf("created %v", rr)
	}
	h.step(0)
	clk.set(rt0.Add(150 * time.Second)) // due: +1m and +2m
	h.step(2)
	h.step(0)
	clk.set(rt0.Add(300 * time.Second)) // +3m, +4m, +5m are due, but 2 runs are unfinished
	h.step(0)
	runs := h.recurringRuns(id)
	if len(runs) != 2 || !strings.HasSuffix(runs[0].Name, "-20250301100100") || !strings.HasSuffix(runs[1].Name, "-20250301100200") {
		t.Fatalf("runs %+v", runs)
	}
	got := h.must(200, "GET", "/apis/v2beta1/runs/"+runs[0].ID, h.admin, nil).m(t)
	if got["recurring_run_id"] != id {
		t.Fatalf("run %v lacks its recurring_run_id", got)
	}
	// One ends: the oldest missed firing (+3m) runs next.
	h.must(200, "POST", "/apis/v2beta1/runs/"+runs[0].ID+":terminate", h.admin, nil)
	h.waitRun(runs[0].ID, h.admin)
	if n, err := h.srv.ScheduleRecurring(context.Background()); n != 1 || err != nil {
		st, _ := h.st.GetRecurringRun(id)
		t.Fatalf("fired %d (%v): %+v", n, err, st)
	}
	runs = h.recurringRuns(id)
	if len(runs) != 3 || !strings.HasSuffix(runs[2].Name, "-20250301100300") {
		t.Fatalf("after one ended: %d runs, last %q", len(runs), runs[len(runs)-1].Name)
	}

	// A crash between creating the +4m run and recording the firing: the
	// next step finds the run by its request id and creates no second one.
	h.must(200, "POST", "/apis/v2beta1/runs/"+runs[1].ID+":terminate", h.admin, nil)
	h.waitRun(runs[1].ID, h.admin)
	stored, err := h.st.GetRecurringRun(id)
	if err != nil {
		t.Fatal(err)
	}
	fourth := rt0.Add(4 * time.Minute)
	reqID := store.RecurringRequestID(stored, fourth)
	if _, err := h.st.Apply(context.Background(), store.ReserveRunMeta{Meta: store.RunMeta{RequestID: reqID, Namespace: "default", RecurringRunID: id}}); err != nil {
		t.Fatal(err)
	}
	plan, err := spec.ParseSkiff([]byte(slowPipeline))
	if err != nil {
		t.Fatal(err)
	}
	early, err := h.eng.Submit(context.Background(), plan, nil, engine.SubmitOptions{RequestID: reqID})
	if err != nil {
		t.Fatal(err)
	}
	h.step(0) // the +4m firing is only recorded: its run exists (and fills the second slot)
	runs = h.recurringRuns(id)
	if len(runs) != 4 || runs[3].ID != early {
		t.Fatalf("after a replayed firing: %d runs", len(runs))
	}
	if stored, _ = h.st.GetRecurringRun(id); !stored.LastFired.Equal(fourth) || stored.LastRunID != early {
		t.Fatalf("recorded firing %v run %s", stored.LastFired, stored.LastRunID)
	}

	// Disabled: nothing fires; enabled again: what was missed meanwhile is
	// not caught up.
	h.must(200, "POST", "/apis/v2beta1/recurringruns/"+id+":disable", h.admin, nil)
	for _, r := range runs {
		_ = h.eng.Cancel(context.Background(), r.ID)
	}
	for _, r := range runs {
		h.waitRun(r.ID, h.admin)
	}
	clk.set(rt0.Add(20 * time.Minute))
	h.step(0)
	if got := h.must(200, "GET", "/apis/v2beta1/recurringruns/"+id, h.admin, nil).m(t); got["status"] != "DISABLED" || got["mode"] != "DISABLE" {
		t.Fatalf("disabled %v", got)
	}
	h.must(200, "POST", "/apis/v2beta1/recurringruns/"+id+":enable", h.admin, nil)
	h.step(0)
	clk.set(rt0.Add(21*time.Minute + time.Second))
	h.step(1)
}

func TestRecurringRuns_CronNoCatchupAndFailedFirings(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: rt0}
	h := newHarness(t, harnessOpts{clock: clk.now})
	rr := h.must(200, "POST", "/apis/v2beta1/recurringruns", h.admin, map[string]any{
		"display_name": "five", "pipeline_spec": simPipeline, "no_catchup": true,
		"runtime_config": map[string]any{"parameters": map[string]any{"who": "cron"}},
		"trigger":        map[string]any{"cron_schedule": map[string]any{"cron": "0 */5 * * * *", "end_time": rt0.Add(time.Hour).Format(time.RFC3339)}},
	}).m(t)
	id := rr["recurring_run_id"].(string)
	clk.set(rt0.Add(21 * time.Minute))
	h.step(1)
	runs := h.recurringRuns(id)
	if len(runs) != 1 || !strings.HasSuffix(runs[0].Name, "-20250301102000") || string(runs[0].Params["who"]) != `"cron"` {
		t.Fatalf("runs %+v", runs)
	}
	h.waitRun(runs[0].ID, h.admin)
	clk.set(rt0.Add(3 * time.Hour)) // past end_time: the last firing was at +60m
	h.step(1)
	if runs = h.recurringRuns(id); !strings.HasSuffix(runs[1].Name, "-20250301110000") {
		t.Fatalf("after the end: %q", runs[1].Name)
	}
	h.waitRun(runs[1].ID, h.admin)
	h.step(0)

	// A firing that cannot create its run is recorded with the reason and
	// not retried forever.
	bad := h.must(200, "POST", "/apis/v2beta1/recurringruns", h.admin, map[string]any{
		"display_name": "bad", "pipeline_spec": simPipeline,
		"trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": 60}},
	}).m(t)
	badID := bad["recurring_run_id"].(string)
	// The spec is fine at creation; make the stored one unusable.
	if _, err := h.st.Apply(context.Background(), store.DeleteRecurringRun{ID: badID}); err != nil {
		t.Fatal(err)
	}
	broken := store.RecurringRun{ID: badID, Namespace: "default", Name: "bad", PipelineSpec: []byte(`"tasks: nope"`), IntervalSeconds: 60,
		MaxConcurrency: 1, Enabled: true, CreatedAt: clk.now(), EnabledAt: clk.now()}
	if _, err := h.st.Apply(context.Background(), store.PutRecurringRun{Create: &broken, Time: clk.now()}); err != nil {
		t.Fatal(err)
	}
	clk.set(clk.now().Add(61 * time.Second))
	h.step(0)
	h.step(0)
	got := h.must(200, "GET", "/apis/v2beta1/recurringruns/"+badID, h.admin, nil).m(t)
	if e, _ := got["error"].(map[string]any); e == nil || !strings.Contains(e["message"].(string), "pipeline_spec") {
		t.Fatalf("failed firing not reported: %v", got)
	}
}

func TestRecurringRuns_RoutesAndBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	const path = "/apis/v2beta1/recurringruns"
	periodic := map[string]any{"periodic_schedule": map[string]any{"interval_second": "3600"}}
	for name, body := range map[string]any{
		"malformed":       `{"display_name":`,
		"unknown field":   `{"display_name":"x","pipeline_spec":"name: p","bogus":1,"trigger":{"periodic_schedule":{"interval_second":"5"}}}`,
		"no trigger":      map[string]any{"display_name": "x", "pipeline_spec": simPipeline},
		"both triggers":   map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": map[string]any{"cron_schedule": map[string]any{"cron": "@hourly"}, "periodic_schedule": map[string]any{"interval_second": "5"}}},
		"bad cron":        map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": map[string]any{"cron_schedule": map[string]any{"cron": "every tuesday"}}},
		"zero interval":   map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": "0"}}},
		"bad interval":    map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": "soon"}}},
		"bad start":       map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": map[string]any{"cron_schedule": map[string]any{"cron": "@hourly", "start_time": "tomorrow"}}},
		"end before":      map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": map[string]any{"cron_schedule": map[string]any{"cron": "@hourly", "start_time": "2025-01-02T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}}},
		"concurrency":     map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "max_concurrency": "11", "trigger": periodic},
		"mode":            map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "mode": "SOMETIMES", "trigger": periodic},
		"no spec":         map[string]any{"display_name": "x", "trigger": periodic},
		"bad param":       map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": periodic, "runtime_config": map[string]any{"parameters": map[string]any{"nope": 1}}},
		"output only":     map[string]any{"display_name": "x", "pipeline_spec": simPipeline, "trigger": periodic, "status": "ENABLED"},
		"local forbidden": map[string]any{"display_name": "x", "pipeline_spec": localPipeline, "trigger": periodic},
	} {
		r := h.do("POST", path, h.admin, body)
		if r.status/100 != 4 || !strings.Contains(string(r.body), "message") {
			t.Errorf("%s: status %d: %s", name, r.status, r.body)
		}
	}
	if l := h.must(200, "GET", path, h.admin, nil).m(t); len(l) != 0 {
		t.Fatalf("bad input created something: %v", l)
	}

	teamA := h.token("team-a", api.RoleEditor)
	viewerA := h.token("team-a", api.RoleViewer)
	teamB := h.token("team-b", api.RoleEditor)
	var ids []string
	for _, name := range []string{"one", "two", "three"} {
		rr := h.must(200, "POST", path, teamA, map[string]any{"display_name": name, "pipeline_spec": simPipeline, "trigger": periodic, "mode": "DISABLE"}).m(t)
		if rr["namespace"] != "team-a" || rr["status"] != "DISABLED" || rr["experiment_id"] == nil {
			t.Fatalf("created %v", rr)
		}
		ids = append(ids, rr["recurring_run_id"].(string))
	}
	var l api.ListRecurringRunsResponse
	h.must(200, "GET", path+"?page_size=2&sort_by=display_name", viewerA, nil).json(t, &l)
	if l.TotalSize != 3 || len(l.RecurringRuns) != 2 || l.RecurringRuns[0].DisplayName != "one" || l.NextPageToken == "" {
		t.Fatalf("page 1 %+v", l)
	}
	h.must(200, "GET", path+"?page_size=2&sort_by=display_name&page_token="+l.NextPageToken, viewerA, nil).json(t, &l)
	if len(l.RecurringRuns) != 1 || l.RecurringRuns[0].DisplayName != "two" {
		t.Fatalf("page 2 %+v", l)
	}
	l = api.ListRecurringRunsResponse{}
	h.must(200, "GET", path, teamB, nil).json(t, &l)
	if l.TotalSize != 0 {
		t.Fatalf("team-b sees %+v", l)
	}
	h.must(403, "GET", path+"?namespace=team-a", teamB, nil)
	id := ids[0]
	h.must(404, "GET", path+"/"+id, teamB, nil)
	h.must(404, "POST", path+"/"+id+":enable", teamB, nil)
	h.must(404, "DELETE", path+"/"+id, teamB, nil)
	h.must(403, "POST", path+"/"+id+":enable", viewerA, nil)
	h.must(403, "POST", path, viewerA, map[string]any{"display_name": "v", "pipeline_spec": simPipeline, "trigger": periodic})
	h.must(200, "POST", path+"/"+id+":enable", teamA, nil)
	if got := h.must(200, "GET", path+"/"+id, teamA, nil).m(t); got["status"] != "ENABLED" {
		t.Fatalf("enabled %v", got)
	}
	h.must(404, "POST", path+"/"+id+":explode", teamA, nil)
	h.must(200, "DELETE", path+"/"+id, teamA, nil)
	h.must(404, "GET", path+"/"+id, teamA, nil)
	h.must(404, "DELETE", path+"/"+id, teamA, nil)
}
