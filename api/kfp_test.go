package api_test

import (
	"net/url"
	"testing"
)

// TestKFPClient_CreateRunFromPackageAndWait replays the requests kfp.Client
// makes for create_run_from_pipeline_package and wait_for_run_completion.
func TestKFPClient_CreateRunFromPackageAndWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	tok := h.token("team-a", 2) // editor
	const v2 = "/apis/v2beta1"

	hz := h.must(200, "GET", v2+"/healthz", tok, nil).m(t)
	if hz["multi_user"] != true {
		t.Errorf("healthz %v", hz)
	}
	filter := `{"predicates":[{"operation":1,"key":"display_name","stringValue":"Default"}]}`
	list := h.must(200, "GET", v2+"/experiments?filter="+url.QueryEscape(filter)+"&namespace=team-a&page_size=1", tok, nil).m(t)
	if len(list) != 0 {
		t.Fatalf("experiments before create: %v", list)
	}
	exp := h.must(200, "POST", v2+"/experiments", tok, map[string]any{"display_name": "Default", "namespace": "team-a"}).m(t)
	expID, _ := exp["experiment_id"].(string)
	if expID == "" || exp["namespace"] != "team-a" || exp["storage_state"] != "AVAILABLE" || exp["created_at"] == "" {
		t.Fatalf("experiment %v", exp)
	}
	list = h.must(200, "GET", v2+"/experiments?filter="+url.QueryEscape(filter)+"&namespace=team-a&page_size=1", tok, nil).m(t)
	if exps, _ := list["experiments"].([]any); len(exps) != 1 || exps[0].(map[string]any)["experiment_id"] != expID {
		t.Fatalf("lookup by display_name: %v", list)
	}
	run := h.must(200, "POST", v2+"/runs", tok, map[string]any{
		"display_name":   "hello run",
		"experiment_id":  expID,
		"pipeline_spec":  map[string]any{"name": "hello", "executor": "sim", "tasks": []any{map[string]any{"name": "greet", "command": []any{"echo"}}}},
		"runtime_config": map[string]any{"parameters": map[string]any{}},
	}).m(t)
	id, _ := run["run_id"].(string)
	if id == "" || run["experiment_id"] != expID || run["display_name"] != "hello run" {
		t.Fatalf("run %v", run)
	}
	final := h.waitRun(id, tok)
	if final["state"] != "SUCCEEDED" {
		t.Fatalf("final %v", final)
	}
	tasks := final["run_details"].(map[string]any)["task_details"].([]any)
	if len(tasks) != 1 || tasks[0].(map[string]any)["state"] != "SUCCEEDED" || tasks[0].(map[string]any)["display_name"] != "greet" {
		t.Fatalf("task details %v", tasks)
	}
	if final["finished_at"] == "" || final["created_at"] == "" {
		t.Fatalf("times %v", final)
	}
}
