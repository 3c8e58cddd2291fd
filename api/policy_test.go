package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// Pipelines that put the local executor below the top level.
const (
	localInLoop = `name: loop
executor: sim
tasks:
  - name: fan
    parallelFor: {items: [1, 2]}
    tasks:
      - {name: step, executor: local, command: [/bin/sh, -c, "exit 1"]}
`
	localInGroup = `name: group
executor: sim
tasks:
  - name: outer
    tasks:
      - name: inner
        tasks:
          - {name: step, executor: local, command: [/bin/sh, -c, "exit 1"]}
`
	localInBranch = `name: branch
executor: sim
tasks:
  - name: decide
    if: "true"
    tasks: [{name: a, command: [echo]}]
    else:
      - {name: step, executor: local, command: [/bin/sh, -c, "exit 1"]}
`
	localAsPlanDefault = `name: plandefault
executor: local
tasks:
  - name: outer
    tasks:
      - {name: step, command: [/bin/sh, -c, "exit 1"]}
`
	localUpperCase = `name: upper
tasks:
  - name: outer
    tasks:
      - {name: step, executor: LOCAL, command: [/bin/sh, -c, "exit 1"]}
`
	// nestedNoExecutor names no executor: it runs on the server's default.
	nestedNoExecutor = `name: nodefault
tasks:
  - name: outer
    parallelFor: {items: [1]}
    tasks:
      - {name: step, command: [/bin/sh, -c, "exit 1"]}
`
)

func TestPolicy_ExecutorCheckedAtEveryDepth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ed := h.token("team-a", api.RoleEditor)
	for name, text := range map[string]string{
		"loop body": localInLoop, "nested group": localInGroup, "else branch": localInBranch,
		"plan default": localAsPlanDefault, "other case": localUpperCase,
	} {
		r := h.do("POST", "/apis/v2beta1/runs", ed, runBody(text, nil))
		if r.status != 403 || !strings.Contains(string(r.body), `executor \"`) || !strings.Contains(string(r.body), "step") {
			t.Errorf("%s: status %d, want 403 naming the step and its executor: %s", name, r.status, r.body)
		}
		// Nor as a recurring run or a stored pipeline's run.
		r = h.do("POST", "/apis/v2beta1/recurringruns", ed, map[string]any{"display_name": "x", "pipeline_spec": text,
			"trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": "60"}}})
		if r.status != 403 {
			t.Errorf("%s: recurring run: status %d, want 403: %s", name, r.status, r.body)
		}
	}
	if l := h.must(200, "GET", "/apis/v2beta1/runs", h.admin, nil).m(t); len(l) != 0 {
		t.Fatalf("refused pipelines created runs: %v", l)
	}
	// Allowed for the namespace, the nested step runs (on the host).
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", h.admin, map[string]any{"allowed_executors": []string{"local"}})
	id := h.must(200, "POST", "/apis/v2beta1/runs", ed, runBody(localInGroup, nil)).m(t)["run_id"].(string)
	if final := h.waitRun(id, ed); final["state"] != "FAILED" {
		t.Fatalf("run %v", final["state"])
	}
	// A policy allowing "local" does not allow "LOCAL".
	h.must(403, "POST", "/apis/v2beta1/runs", ed, runBody(localUpperCase, nil))
}

func TestPolicy_ServerDefaultExecutorChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{defaultExecutor: "local"})
	ed := h.token("team-a", api.RoleEditor)
	r := h.must(403, "POST", "/apis/v2beta1/runs", ed, runBody(nestedNoExecutor, nil))
	if !strings.Contains(string(r.body), `tasks[0].tasks[0] (step) runs on executor \"local\"`) {
		t.Fatalf("rejection does not name the step: %s", r.body)
	}
}

// A retry runs tasks again: it is checked against the policy as it is now.
func TestPolicy_RetryCheckedAgainstCurrentPolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ed := h.token("team-a", api.RoleEditor)
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", h.admin, map[string]any{"allowed_executors": []string{"local"}})
	id := h.must(200, "POST", "/apis/v2beta1/runs", ed, runBody(localInLoop, nil)).m(t)["run_id"].(string)
	if final := h.waitRun(id, ed); final["state"] != "FAILED" {
		t.Fatalf("run %v", final["state"])
	}
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", h.admin, map[string]any{"allowed_executors": []string{}})
	r := h.must(403, "POST", "/apis/v2beta1/runs/"+id+":retry", ed, nil)
	if !strings.Contains(string(r.body), "tasks[0].tasks[0] (step)") {
		t.Fatalf("rejection does not name the step: %s", r.body)
	}
	if got := h.must(200, "GET", "/apis/v2beta1/runs/"+id, ed, nil).m(t); got["state"] != "FAILED" {
		t.Fatalf("refused retry changed the run: %v", got["state"])
	}
	// Allowed again, the retry goes through.
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", h.admin, map[string]any{"allowed_executors": []string{"local"}})
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":retry", ed, nil)
	h.waitRun(id, ed)
}

// A recurring run's firing is checked against the policy as it is then.
func TestPolicy_RecurringFiringChecked(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: rt0}
	h := newHarness(t, harnessOpts{clock: clk.now})
	ed := h.token("team-a", api.RoleEditor)
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", h.admin, map[string]any{"allowed_executors": []string{"local"}})
	rr := h.must(200, "POST", "/apis/v2beta1/recurringruns", ed, map[string]any{"display_name": "nightly", "pipeline_spec": localInBranch,
		"trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": "60"}}}).m(t)
	h.must(200, "PUT", "/apis/skiff/v1/namespaces/team-a/policy", h.admin, map[string]any{"allowed_executors": []string{}})
	clk.set(rt0.Add(90 * time.Second))
	h.step(0)
	id := rr["recurring_run_id"].(string)
	if runs := h.recurringRuns(id); len(runs) != 0 {
		t.Fatalf("a firing ran a forbidden executor: %+v", runs)
	}
	got := h.must(200, "GET", "/apis/v2beta1/recurringruns/"+id, ed, nil).m(t)
	if msg, _ := got["error"].(map[string]any)["message"].(string); !strings.Contains(msg, `executor "local"`) {
		t.Fatalf("firing error %v", got["error"])
	}
}

// The kube namespace of a Skiff namespace: set by an admin of every
// namespace, kept by a PUT that leaves it out, refused from a namespace's
// own admin and when it is no namespace name.
func TestPolicy_KubeNamespace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	path := "/apis/skiff/v1/namespaces/team-a/policy"
	got := h.must(200, "PUT", path, h.admin, map[string]any{"allowed_executors": []string{}, "kube_namespace": "tenant-a"}).m(t)
	if got["kube_namespace"] != "tenant-a" {
		t.Fatalf("PUT answered %v", got)
	}
	// Left out: kept.
	h.must(200, "PUT", path, h.admin, map[string]any{"allowed_executors": []string{"local"}})
	if got := h.must(200, "GET", path, h.admin, nil).m(t); got["kube_namespace"] != "tenant-a" {
		t.Fatalf("a PUT without kube_namespace changed it: %v", got)
	}
	r := h.must(400, "PUT", path, h.admin, map[string]any{"allowed_executors": []string{}, "kube_namespace": "Tenant_A"})
	if !strings.Contains(string(r.body), "kube_namespace") {
		t.Errorf("bad name: %s", r.body)
	}
	// The namespace's own admin can change its executors but not where
	// its pods go.
	own := h.token("team-a", api.RoleAdmin)
	r = h.must(403, "PUT", path, own, map[string]any{"allowed_executors": []string{}, "kube_namespace": "tenant-b"})
	if !strings.Contains(string(r.body), "kube_namespace") {
		t.Errorf("namespace admin: %s", r.body)
	}
	h.must(200, "PUT", path, own, map[string]any{"allowed_executors": []string{}, "kube_namespace": "tenant-a"})
	if got := h.must(200, "GET", path, own, nil).m(t); got["kube_namespace"] != "tenant-a" {
		t.Fatalf("after refused and same-value PUTs: %v", got)
	}
	// Cleared by an admin of every namespace.
	h.must(200, "PUT", path, h.admin, map[string]any{"allowed_executors": []string{}, "kube_namespace": ""})
	if got := h.must(200, "GET", path, h.admin, nil).m(t); got["kube_namespace"] != nil {
		t.Fatalf("cleared: %v", got)
	}
}
