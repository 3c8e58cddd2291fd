package api_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// TestAuth_NamespacesAndRoles: a token for namespace A gets 401/403/404 on
// B's objects on every route, and roles limit what a token may do.
func TestAuth_NamespacesAndRoles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{sim: slowSim()})
	bTok := h.token("team-b", api.RoleEditor)
	aTok := h.token("team-a", api.RoleEditor)
	aView := h.token("team-a", api.RoleViewer)

	bExp := h.must(200, "POST", "/apis/v2beta1/experiments", bTok, map[string]any{"display_name": "b-exp"}).m(t)["experiment_id"].(string)
	bRun := h.must(200, "POST", "/apis/v2beta1/runs", bTok, runBody(slowPipeline, map[string]any{"experiment_id": bExp})).m(t)["run_id"].(string)
	bDone := h.must(200, "POST", "/apis/v2beta1/runs", bTok, runBody(simPipeline, nil)).m(t)["run_id"].(string)
	h.waitRun(bDone, bTok)

	// Every route, as A, on B's objects.
	cases := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/apis/v2beta1/experiments/" + bExp, nil, 404},
		{"POST", "/apis/v2beta1/experiments/" + bExp + ":archive", nil, 404},
		{"POST", "/apis/v2beta1/experiments/" + bExp + ":unarchive", nil, 404},
		{"DELETE", "/apis/v2beta1/experiments/" + bExp, nil, 404},
		{"GET", "/apis/v2beta1/experiments?namespace=team-b", nil, 403},
		{"POST", "/apis/v2beta1/experiments", map[string]any{"display_name": "x", "namespace": "team-b"}, 403},
		{"GET", "/apis/v2beta1/runs/" + bRun, nil, 404},
		{"GET", "/apis/v2beta1/runs?namespace=team-b", nil, 403},
		{"GET", "/apis/v2beta1/runs?experiment_id=" + bExp, nil, 404},
		{"POST", "/apis/v2beta1/runs", runBody(simPipeline, map[string]any{"experiment_id": bExp}), 404},
		{"POST", "/apis/v2beta1/runs?namespace=team-b", runBody(simPipeline, nil), 403},
		{"POST", "/apis/v2beta1/runs/" + bRun + ":terminate", nil, 404},
		{"POST", "/apis/v2beta1/runs/" + bRun + ":archive", nil, 404},
		{"POST", "/apis/v2beta1/runs/" + bDone + ":unarchive", nil, 404},
		{"DELETE", "/apis/v2beta1/runs/" + bDone, nil, 404},
		{"GET", "/apis/skiff/v1/runs/" + bDone + "/tasks/greet/logs", nil, 404},
		{"GET", "/apis/skiff/v1/events?run_id=" + bRun, nil, 404},
		{"GET", "/apis/skiff/v1/namespaces/team-b/policy", nil, 403},
		{"PUT", "/apis/skiff/v1/namespaces/team-b/policy", map[string]any{"allowed_executors": []string{"local"}}, 403},
		{"GET", "/apis/skiff/v1/artifacts/sha256:" + strings.Repeat("0", 64), nil, 404},
	}
	for _, tc := range cases {
		if r := h.do(tc.method, tc.path, aTok, tc.body); r.status != tc.want {
			t.Errorf("A: %s %s: %d, want %d: %s", tc.method, tc.path, r.status, tc.want, r.body)
		}
		if r := h.do(tc.method, tc.path, "", tc.body); r.status != 401 {
			t.Errorf("no token: %s %s: %d, want 401", tc.method, tc.path, r.status)
		}
		if r := h.do(tc.method, tc.path, "skiff_00_bad", tc.body); r.status != 401 {
			t.Errorf("bad token: %s %s: %d, want 401", tc.method, tc.path, r.status)
		}
	}
	// Lists show A nothing of B's.
	if l := h.must(200, "GET", "/apis/v2beta1/runs", aTok, nil).m(t); len(l) != 0 {
		t.Errorf("A sees runs %v", l)
	}
	if l := h.must(200, "GET", "/apis/v2beta1/experiments", aTok, nil).m(t); len(l) != 0 {
		t.Errorf("A sees experiments %v", l)
	}
	// B's objects are untouched.
	if r := h.must(200, "GET", "/apis/v2beta1/runs/"+bRun, bTok, nil).m(t); r["state"] == "CANCELED" || r["state"] == "CANCELING" {
		t.Errorf("B's run was terminated by A: %v", r["state"])
	}
	// Viewers read but do not write; only admins set policies.
	h.must(200, "GET", "/apis/v2beta1/runs", aView, nil)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/apis/v2beta1/experiments", map[string]any{"display_name": "x"}},
		{"POST", "/apis/v2beta1/runs", runBody(simPipeline, nil)},
		{"PUT", "/apis/skiff/v1/namespaces/team-a/policy", map[string]any{"allowed_executors": []string{}}},
	} {
		if r := h.do(tc.method, tc.path, aView, tc.body); r.status != 403 {
			t.Errorf("viewer %s %s: %d, want 403", tc.method, tc.path, r.status)
		}
	}
	h.must(403, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", aTok, map[string]any{"allowed_executors": []string{}})
	// The all-namespaces admin sees both.
	if l := h.must(200, "GET", "/apis/v2beta1/runs", h.admin, nil).m(t); l["total_size"] != 2.0 {
		t.Errorf("admin sees %v", l["total_size"])
	}
	h.must(200, "POST", "/apis/v2beta1/runs/"+bRun+":terminate", bTok, nil)
	h.waitRun(bRun, bTok)
}

func TestAuth_LocalExecutorOffUntilAdminEnables(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ed := h.token("team-a", api.RoleEditor)
	adm := h.token("team-a", api.RoleAdmin)
	r := h.must(403, "POST", "/apis/v2beta1/runs", ed, runBody(localPipeline, nil))
	if !strings.Contains(string(r.body), `executor \"local\"`) || !strings.Contains(string(r.body), "team-a") {
		t.Fatalf("rejection does not say why: %s", r.body)
	}
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", adm, map[string]any{"allowed_executors": []string{"local"}})
	h.must(400, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", adm, map[string]any{"allowed_executors": []string{"warp"}})
	id := h.must(200, "POST", "/apis/v2beta1/runs", ed, runBody(localPipeline, nil)).m(t)["run_id"].(string)
	if final := h.waitRun(id, ed); final["state"] != "SUCCEEDED" {
		t.Fatalf("local run %v", final)
	}
	// Its logs are readable through the API.
	logs := h.must(200, "GET", "/apis/skiff/v1/runs/"+id+"/tasks/hi/logs", ed, nil)
	if !strings.Contains(string(logs.body), "hi") {
		t.Fatalf("logs %q", logs.body)
	}
	// Another namespace still may not.
	h.must(403, "POST", "/apis/v2beta1/runs", h.token("team-b", api.RoleEditor), runBody(localPipeline, nil))
}

func TestServer_HealthReadyMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.must(200, "GET", "/healthz", "", nil)
	h.must(200, "GET", "/readyz", "", nil)
	h.srv.SetReady(false)
	h.must(503, "GET", "/readyz", "", nil)
	h.srv.SetReady(true)
	id := h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil)).m(t)["run_id"].(string)
	h.waitRun(id, h.admin)
	m := string(h.must(200, "GET", "/metrics", "", nil).body)
	for _, want := range []string{`skiff_runs{state="SUCCEEDED"} 1`, "skiff_api_runs_created_total 1", `skiff_api_requests_total{code="200",route="POST /apis/v2beta1/runs"}`, "skiff_engine_decisions_total", "skiff_engine_commit_seconds"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	h.must(404, "GET", "/apis/v2beta1/nothing", h.admin, nil)
}

func TestServer_NoAuthIsAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{noAuth: true})
	h.must(200, "POST", "/apis/v2beta1/experiments", "", map[string]any{"display_name": "x", "namespace": "any"})
	if hz := h.must(200, "GET", "/apis/v2beta1/healthz", "", nil).m(t); hz["multi_user"] != false {
		t.Errorf("healthz %v", hz)
	}
}

func TestEvents_StreamRunChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	tok := h.token("team-a", api.RoleViewer)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.http.URL+"/apis/skiff/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := h.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Scan() // the opening comment: the subscription is live
	// A run in another namespace is not shown; one in team-a is.
	h.must(200, "POST", "/apis/v2beta1/runs?namespace=team-b", h.admin, runBody(simPipeline, map[string]any{"display_name": "hidden"}))
	mine := h.must(200, "POST", "/apis/v2beta1/runs?namespace=team-a", h.admin, runBody(simPipeline, nil)).m(t)["run_id"].(string)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if !strings.Contains(line, mine) {
			t.Fatalf("event of another namespace's run: %s", line)
		}
		if strings.Contains(line, `"state":"SUCCEEDED"`) && !strings.Contains(line, `"task"`) {
			return
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
}

// TestLogs_MissingLogBlobIsNotFound: a task whose stored log blob is gone
// (a lost disk, a node that never got its copy) answers 404 naming the
// execution, as the artifact route does, not 500.
func TestLogs_MissingLogBlobIsNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	adm := h.token("team-a", api.RoleAdmin)
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", adm, map[string]any{"allowed_executors": []string{"local"}})
	id := h.must(200, "POST", "/apis/v2beta1/runs", adm, runBody(localPipeline, nil)).m(t)["run_id"].(string)
	if final := h.waitRun(id, adm); final["state"] != "SUCCEEDED" {
		t.Fatalf("local run %v", final)
	}
	tasks, err := h.st.Tasks(id)
	if err != nil || len(tasks) == 0 || len(tasks[0].Attempts) == 0 || tasks[0].Attempts[0].Logs == nil {
		t.Fatalf("no stored log: %+v %v", tasks, err)
	}
	if err := h.blobs.Delete(context.Background(), tasks[0].Attempts[0].Logs.Digest); err != nil {
		t.Fatal(err)
	}
	r := h.must(404, "GET", "/apis/skiff/v1/runs/"+id+"/tasks/hi/logs", adm, nil)
	if !strings.Contains(string(r.body), tasks[0].Attempts[0].ExecutionID) {
		t.Fatalf("404 does not name the execution: %s", r.body)
	}
}
