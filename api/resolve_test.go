package api_test

import (
	"strings"
	"testing"

	"github.com/skiffml/skiff/api"
)

// TestRuns_IDPrefixes: a unique prefix of a run id names the run on every
// run route; an ambiguous one is a 400; another namespace's runs neither
// match nor make a prefix ambiguous.
func TestRuns_IDPrefixes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	var ids []string
	for range 3 {
		m := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil)).m(t)
		ids = append(ids, m["run_id"].(string))
	}
	id := ids[0]
	h.waitRun(id[:8], h.admin)
	var s api.RunSummary
	h.must(200, "GET", "/apis/skiff/v1/runs/"+id[:8], h.admin, nil).json(t, &s)
	if s.RunID != id || len(s.Tasks) != 2 || s.State != "SUCCEEDED" {
		t.Errorf("summary by prefix = %+v", s)
	}
	h.must(200, "GET", "/apis/skiff/v1/runs/"+id[:8]+"/tasks/greet/logs", h.admin, nil)
	if r := h.do("GET", "/apis/v2beta1/runs/"+commonPrefix(ids), h.admin, nil); commonPrefix(ids) != "" && r.status != 400 {
		t.Errorf("ambiguous prefix: status %d %s", r.status, r.body)
	}
	other := h.token("team-b", api.RoleEditor)
	if r := h.do("GET", "/apis/v2beta1/runs/"+id[:8], other, nil); r.status != 404 {
		t.Errorf("another namespace's run by prefix: status %d, want 404", r.status)
	}
	var list api.ListRunSummariesResponse
	h.must(200, "GET", "/apis/skiff/v1/runs", h.admin, nil).json(t, &list)
	if len(list.Runs) != 3 || list.Runs[0].TaskCount != 2 {
		t.Errorf("summaries = %+v", list.Runs)
	}
}

func commonPrefix(ids []string) string {
	p := ids[0]
	for _, id := range ids[1:] {
		for !strings.HasPrefix(id, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// TestExperiments_ByNameOrPrefix: an experiment is found by its name or a
// unique id prefix, as a run's experiment_id and on its own route.
func TestExperiments_ByNameOrPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	e := h.must(200, "POST", "/apis/v2beta1/experiments", h.admin, map[string]any{"display_name": "tuning"}).m(t)
	eid := e["experiment_id"].(string)
	h.must(200, "GET", "/apis/v2beta1/experiments/tuning", h.admin, nil)
	h.must(200, "GET", "/apis/v2beta1/experiments/"+eid[:6], h.admin, nil)
	r := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, map[string]any{"experiment_id": "tuning"})).m(t)
	if r["experiment_id"] != eid {
		t.Errorf("run's experiment = %v, want %s", r["experiment_id"], eid)
	}
}

// TestRuns_PipelineFileOnlyFromLocalClients: a server for remote clients
// refuses a run that asks it to read a file of its host.
func TestRuns_PipelineFileOnlyFromLocalClients(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	r := h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, map[string]any{"pipeline_file": "/etc/passwd"}))
	if r.status != 400 || !strings.Contains(string(r.body), "pipeline_file") {
		t.Errorf("status %d %s, want 400 naming pipeline_file", r.status, r.body)
	}
}
