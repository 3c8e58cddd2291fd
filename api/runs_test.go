package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/executors/sim"
)

func TestRuns_IdempotentCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	a := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil), api.RequestIDHeader, "req-1").m(t)
	b := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil), api.RequestIDHeader, "req-1").m(t)
	c := h.must(200, "POST", "/apis/v2beta1/runs?request_id=req-1", h.admin, runBody(simPipeline, nil)).m(t)
	if a["run_id"] != b["run_id"] || a["run_id"] != c["run_id"] {
		t.Fatalf("three runs for one request id: %v %v %v", a["run_id"], b["run_id"], c["run_id"])
	}
	d := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil)).m(t)
	if d["run_id"] == a["run_id"] {
		t.Fatal("a run without request id reused another")
	}
	// The same request id in another namespace is another run.
	other := h.token("team-b", api.RoleEditor)
	e := h.must(200, "POST", "/apis/v2beta1/runs", other, runBody(simPipeline, nil), api.RequestIDHeader, "req-1").m(t)
	if e["run_id"] == a["run_id"] {
		t.Fatal("request ids leak across namespaces")
	}
}

func TestRuns_ParametersAndDetails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	run := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, map[string]any{
		"runtime_config": map[string]any{"parameters": map[string]any{"who": "kfp"}},
		"description":    "desc",
	})).m(t)
	final := h.waitRun(run["run_id"].(string), h.admin)
	if final["state"] != "SUCCEEDED" || final["description"] != "desc" {
		t.Fatalf("run %v", final)
	}
	if p := final["runtime_config"].(map[string]any)["parameters"].(map[string]any); p["who"] != "kfp" {
		t.Fatalf("parameters %v", p)
	}
	if spec, _ := final["pipeline_spec"].(string); !strings.Contains(spec, "name: hello") {
		t.Fatalf("pipeline_spec %v", final["pipeline_spec"])
	}
	td := final["run_details"].(map[string]any)["task_details"].([]any)
	if len(td) != 2 {
		t.Fatalf("tasks %v", td)
	}
	for _, x := range td {
		task := x.(map[string]any)
		if task["state"] != "SUCCEEDED" || task["execution_id"] == "" || task["executor_detail"].(map[string]any)["attempts"] != "1" {
			t.Errorf("task %v", task)
		}
	}
	// The wrapped form {pipeline_spec, platform_spec} works too.
	h.must(200, "POST", "/apis/v2beta1/runs", h.admin, map[string]any{"display_name": "w",
		"pipeline_spec": map[string]any{"pipeline_spec": simPipeline, "platform_spec": map[string]any{}}})
}

func TestRuns_BadInputChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ir := map[string]any{"pipelineInfo": map[string]any{"name": "p"}, "root": map[string]any{}, "deploymentSpec": map[string]any{}, "schemaVersion": "2.1.0"}
	cases := []struct {
		name string
		body any
		want string
	}{
		{"malformed", `{"display_name":`, "invalid JSON"},
		{"unknown field", `{"display_name":"x","bogus":1}`, `unknown field "bogus"`},
		{"wrong type", `{"display_name":5}`, "display_name"},
		{"trailing data", `{"display_name":"x"} {}`, "after the object"},
		{"empty", ``, "empty"},
		{"no spec", map[string]any{"display_name": "x"}, "pipeline_spec"},
		{"bad yaml", runBody("name: [", nil), "pipeline_spec"},
		{"bad field", runBody("name: x\ntasks:\n  - name: a\n    comand: [x]\n", nil), "comand"},
		{"kfp ir without a dag", runBody("", map[string]any{"pipeline_spec": ir}), "root.dag"},
		{"kfp ir text without a dag", runBody("pipelineInfo: {name: p}\nroot: {}\n", nil), "root.dag"},
		{"platform spec", runBody("", map[string]any{"pipeline_spec": map[string]any{"pipeline_spec": simPipeline, "platform_spec": map[string]any{"platforms": 1}}}), "platform_spec"},
		{"bad param", runBody(simPipeline, map[string]any{"runtime_config": map[string]any{"parameters": map[string]any{"nope": 1}}}), "parameters.nope"},
		{"bad param type", runBody(simPipeline, map[string]any{"runtime_config": map[string]any{"parameters": map[string]any{"who": 3}}}), "parameters.who"},
		{"unknown experiment", runBody(simPipeline, map[string]any{"experiment_id": "nope"}), "not found"},
		{"oversized", `{"display_name":"` + strings.Repeat("x", 9<<20) + `"}`, "larger than"},
	}
	for _, tc := range cases {
		r := h.do("POST", "/apis/v2beta1/runs", h.admin, tc.body)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s: status %d: %s", tc.name, r.status, r.body)
			continue
		}
		var e api.Error
		r.json(t, &e)
		if e.Code == 0 || !strings.Contains(e.Message, tc.want) || e.Details == nil {
			t.Errorf("%s: error %+v, want message containing %q", tc.name, e, tc.want)
		}
	}
	list := h.must(200, "GET", "/apis/v2beta1/runs", h.admin, nil).m(t)
	if len(list) != 0 {
		t.Fatalf("bad input created runs: %v", list)
	}
}

func TestRuns_ListPagingSortFilter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	exp := h.must(200, "POST", "/apis/v2beta1/experiments", h.admin, map[string]any{"display_name": "e"}).m(t)
	var ids []string
	for i := range 5 {
		body := runBody(simPipeline, map[string]any{"display_name": fmt.Sprintf("run-%d", i)})
		if i%2 == 0 {
			body["experiment_id"] = exp["experiment_id"]
		}
		ids = append(ids, h.must(200, "POST", "/apis/v2beta1/runs", h.admin, body).m(t)["run_id"].(string))
	}
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		q := "?page_size=2&sort_by=" + url.QueryEscape("display_name desc")
		if token != "" {
			q += "&page_token=" + token
		}
		var page api.ListRunsResponse
		h.must(200, "GET", "/apis/v2beta1/runs"+q, h.admin, nil).json(t, &page)
		if page.TotalSize != 5 {
			t.Fatalf("total_size %d", page.TotalSize)
		}
		for _, r := range page.Runs {
			names = append(names, r.DisplayName)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(names, ",") != "run-4,run-3,run-2,run-1,run-0" {
		t.Fatalf("pages gave %v", names)
	}
	var byExp api.ListRunsResponse
	h.must(200, "GET", "/apis/v2beta1/runs?experiment_id="+exp["experiment_id"].(string), h.admin, nil).json(t, &byExp)
	if byExp.TotalSize != 3 {
		t.Fatalf("runs in experiment: %d", byExp.TotalSize)
	}
	filters := map[string]int{
		`{"predicates":[{"operation":1,"key":"display_name","stringValue":"run-3"}]}`:                               1,
		`{"predicates":[{"operation":"EQUALS","key":"display_name","string_value":"run-3"}]}`:                       1,
		`{"predicates":[{"operation":"NOT_EQUALS","key":"name","string_value":"run-3"}]}`:                           4,
		`{"predicates":[{"operation":"IN","key":"run_id","string_values":{"values":["` + ids[0] + `"]}}]}`:          1,
		`{"predicates":[{"operation":"IS_SUBSTRING","key":"display_name","string_value":"run-"}]}`:                  5,
		`{"predicates":[{"operation":"GREATER_THAN","key":"created_at","timestamp_value":"2000-01-01T00:00:00Z"}]}`: 5,
	}
	for f, want := range filters {
		var got api.ListRunsResponse
		h.must(200, "GET", "/apis/v2beta1/runs?filter="+url.QueryEscape(f), h.admin, nil).json(t, &got)
		if int(got.TotalSize) != want {
			t.Errorf("filter %s: %d runs, want %d", f, got.TotalSize, want)
		}
	}
	for _, bad := range []string{
		"?filter=" + url.QueryEscape(`{"predicates":[{"operation":1,"key":"nope","string_value":"x"}]}`),
		"?filter=" + url.QueryEscape(`{"predicates":[{"operation":42,"key":"name","string_value":"x"}]}`),
		"?filter=" + url.QueryEscape(`{"predicates":[{"operation":1,"key":"name"}]}`),
		"?filter=" + url.QueryEscape(`not json`),
		"?sort_by=nope",
		"?sort_by=" + url.QueryEscape("name sideways"),
		"?page_size=-1",
		"?page_token=garbage",
	} {
		h.must(400, "GET", "/apis/v2beta1/runs"+bad, h.admin, nil)
	}
}

func TestRuns_TerminateArchiveDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{sim: slowSim()})
	id := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(slowPipeline, nil)).m(t)["run_id"].(string)
	h.must(400, "DELETE", "/apis/v2beta1/runs/"+id, h.admin, nil) // still running
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":terminate", h.admin, nil)
	if final := h.waitRun(id, h.admin); final["state"] != "CANCELED" {
		t.Fatalf("terminated run is %v", final["state"])
	}
	h.must(400, "POST", "/apis/v2beta1/runs/"+id+":terminate", h.admin, nil)
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":archive", h.admin, nil)
	if r := h.must(200, "GET", "/apis/v2beta1/runs/"+id, h.admin, nil).m(t); r["storage_state"] != "ARCHIVED" {
		t.Fatalf("archived run %v", r["storage_state"])
	}
	f := url.QueryEscape(`{"predicates":[{"operation":"EQUALS","key":"storage_state","string_value":"ARCHIVED"}]}`)
	if l := h.must(200, "GET", "/apis/v2beta1/runs?filter="+f, h.admin, nil).m(t); l["total_size"] != 1.0 {
		t.Fatalf("archived filter %v", l)
	}
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":unarchive", h.admin, nil)
	// Retry restarts the canceled run in place; terminate it again.
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":retry", h.admin, nil)
	if r := h.must(200, "GET", "/apis/v2beta1/runs/"+id, h.admin, nil).m(t); r["state"] != "RUNNING" {
		t.Fatalf("retried run is %v", r["state"])
	}
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":terminate", h.admin, nil)
	if final := h.waitRun(id, h.admin); final["state"] != "CANCELED" {
		t.Fatalf("terminated run is %v", final["state"])
	}
	h.must(404, "POST", "/apis/v2beta1/runs/"+id+":explode", h.admin, nil)
	h.must(200, "DELETE", "/apis/v2beta1/runs/"+id, h.admin, nil)
	h.must(404, "GET", "/apis/v2beta1/runs/"+id, h.admin, nil)
}

func TestExperiments_Lifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	e := h.must(200, "POST", "/apis/v2beta1/experiments", h.admin, map[string]any{"display_name": "exp", "description": "d"}).m(t)
	id := e["experiment_id"].(string)
	if e["namespace"] != "default" {
		t.Fatalf("experiment %v", e)
	}
	h.must(409, "POST", "/apis/v2beta1/experiments", h.admin, map[string]any{"display_name": "exp"})
	h.must(400, "POST", "/apis/v2beta1/experiments", h.admin, map[string]any{"display_name": " "})
	h.must(200, "GET", "/apis/v2beta1/experiments/"+id, h.admin, nil)
	h.must(200, "POST", "/apis/v2beta1/experiments/"+id+":archive", h.admin, nil)
	h.must(400, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, map[string]any{"experiment_id": id}))
	h.must(200, "POST", "/apis/v2beta1/experiments/"+id+":unarchive", h.admin, nil)
	run := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, map[string]any{"experiment_id": id})).m(t)
	h.waitRun(run["run_id"].(string), h.admin)
	var l api.ListExperimentsResponse
	h.must(200, "GET", "/apis/v2beta1/experiments?sort_by=display_name", h.admin, nil).json(t, &l)
	if l.TotalSize != 1 || l.Experiments[0].DisplayName != "exp" {
		t.Fatalf("list %+v", l)
	}
	h.must(200, "DELETE", "/apis/v2beta1/experiments/"+id, h.admin, nil)
	h.must(404, "GET", "/apis/v2beta1/experiments/"+id, h.admin, nil)
}

func TestRuns_RetryFailedRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{sim: sim.Config{Tasks: map[string]sim.Behavior{"shout": {Fail: true}}}})
	id := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil)).m(t)["run_id"].(string)
	if final := h.waitRun(id, h.admin); final["state"] != "FAILED" {
		t.Fatalf("run is %v, want FAILED", final["state"])
	}
	other := h.token("elsewhere", api.RoleEditor)
	h.must(404, "POST", "/apis/v2beta1/runs/"+id+":retry", other, nil)
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":retry", h.admin, nil)
	final := h.waitRun(id, h.admin)
	if final["state"] != "FAILED" {
		t.Fatalf("retried run is %v, want FAILED again (shout always fails)", final["state"])
	}
	tasks, err := h.st.Tasks(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks[0].Attempts) != 1 || len(tasks[1].Attempts) != 2 {
		t.Fatalf("greet ran %d times, shout %d: want 1 and 2", len(tasks[0].Attempts), len(tasks[1].Attempts))
	}
	// A succeeded run cannot be retried.
	ok := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(slowPipeline, nil)).m(t)["run_id"].(string)
	if r := h.waitRun(ok, h.admin); r["state"] != "SUCCEEDED" {
		t.Fatalf("run is %v", r["state"])
	}
	h.must(400, "POST", "/apis/v2beta1/runs/"+ok+":retry", h.admin, nil)
}

// TestRuns_LabelsAndSelector: labels given at creation come back on the
// run and its summary; label_selector selects on them (before paging);
// bad labels are refused with the field named and create nothing.
func TestRuns_LabelsAndSelector(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	for i, labels := range []map[string]string{
		{"team": "vision", "stage": "dev"},
		{"team": "vision", "stage": "prod"},
		{"team": "nlp"},
		nil,
	} {
		body := runBody(simPipeline, map[string]any{"display_name": fmt.Sprintf("run-%d", i)})
		if labels != nil {
			body["labels"] = labels
		}
		h.must(200, "POST", "/apis/v2beta1/runs", h.admin, body)
	}
	names := func(path string) string {
		var page api.ListRunSummariesResponse
		h.must(200, "GET", path, h.admin, nil).json(t, &page)
		var out []string
		for _, r := range page.Runs {
			out = append(out, r.Name)
		}
		return strings.Join(out, ",")
	}
	cases := map[string]string{
		"team=vision":             "run-0,run-1",
		"team=vision,stage!=prod": "run-0",
		"!team":                   "run-3",
		"stage":                   "run-0,run-1",
		"team!=vision":            "run-2,run-3",
	}
	for sel, want := range cases {
		if got := names("/apis/skiff/v1/runs?sort_by=name&label_selector=" + url.QueryEscape(sel)); got != want {
			t.Errorf("label_selector %q: %s, want %s", sel, got, want)
		}
	}
	// The selector applies before paging: one per page, two pages.
	var page api.ListRunSummariesResponse
	h.must(200, "GET", "/apis/skiff/v1/runs?page_size=1&label_selector=team%3Dvision", h.admin, nil).json(t, &page)
	if page.TotalSize != 2 || len(page.Runs) != 1 || page.Runs[0].Labels["team"] != "vision" || page.NextPageToken == "" {
		t.Errorf("first page with a selector: %+v", page)
	}
	var v2 api.ListRunsResponse
	h.must(200, "GET", "/apis/v2beta1/runs?label_selector=team%3Dnlp", h.admin, nil).json(t, &v2)
	if len(v2.Runs) != 1 || v2.Runs[0].Labels["team"] != "nlp" {
		t.Errorf("v2beta1 list with a selector: %+v", v2.Runs)
	}
	h.must(400, "GET", "/apis/skiff/v1/runs?label_selector="+url.QueryEscape("team=a b"), h.admin, nil)

	for body, want := range map[string]string{
		`{"labels":{"te am":"x"}}`:  "labels: key",
		`{"labels":{"team":"a b"}}`: "labels.team:",
		`{"labels":{"team":["x"]}}`: "labels",
		`{"labels":{"":"x"}}`:       "empty key",
	} {
		var extra map[string]any
		if err := json.Unmarshal([]byte(body), &extra); err != nil {
			t.Fatal(err)
		}
		r := h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, extra))
		if r.status != 400 || !strings.Contains(string(r.body), want) {
			t.Errorf("labels %s: %d %s, want 400 naming %q", body, r.status, r.body, want)
		}
	}
	if got := names("/apis/skiff/v1/runs"); strings.Count(got, ",") != 3 {
		t.Errorf("bad labels created runs: %s", got)
	}
}
