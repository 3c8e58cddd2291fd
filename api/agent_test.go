package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/worker/agentclient"
)

// workerToken makes a worker token for node through the API (admin).
func (h *harness) workerToken(node string) string {
	h.t.Helper()
	var got api.TokenCreated
	h.must(200, "POST", "/apis/skiff/v1/tokens", h.admin, api.TokenRequest{Role: "worker", NodeID: node}).json(h.t, &got)
	if got.Role != "worker" || got.NodeID != node || got.Namespace != api.AllNamespaces {
		h.t.Fatalf("created %+v", got)
	}
	return got.Token
}

func register(node string, epoch uint64) api.AgentProposal {
	return api.AgentProposal{Commands: []api.AgentCommand{{Register: &store.RegisterNode{
		Node: store.Node{ID: node, Executors: []string{"sim"}, Labels: map[string]string{"gpu": "true"}}, Epoch: epoch, Time: time.Now().UTC()}}}}
}

// TestAgent_WorkerTokenCreation: only an admin of every namespace makes a
// worker token, it must name a node, and not a server's.
func TestAgent_WorkerTokenCreation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.workerToken("gpu-1")
	nsAdmin := h.token("team-a", api.RoleAdmin)
	for name, tc := range map[string]struct {
		token string
		in    api.TokenRequest
		want  int
		says  string
	}{
		"namespace admin":   {nsAdmin, api.TokenRequest{Role: "worker", NodeID: "gpu-2"}, 403, "only an admin of every namespace"},
		"no node":           {h.admin, api.TokenRequest{Role: "worker"}, 400, "node_id: required"},
		"bad node":          {h.admin, api.TokenRequest{Role: "worker", NodeID: "-x"}, 400, "node_id"},
		"one namespace":     {h.admin, api.TokenRequest{Role: "worker", NodeID: "gpu-2", Namespace: "team-a"}, 400, "namespace"},
		"a server's id":     {h.admin, api.TokenRequest{Role: "worker", NodeID: h.st.ID()}, 403, "is a server of this cluster"},
		"node on an editor": {h.admin, api.TokenRequest{Role: "editor", Namespace: "team-a", NodeID: "gpu-2"}, 400, "node_id"},
	} {
		r := h.do("POST", "/apis/skiff/v1/tokens", tc.token, tc.in)
		if r.status != tc.want || !strings.Contains(string(r.body), tc.says) {
			t.Errorf("%s: status %d %s, want %d and %q", name, r.status, r.body, tc.want, tc.says)
		}
	}
}

// TestAgent_WorkerTokenDoesOnlyItsNodesCalls: a worker token is refused
// by every user route (runs, reads, tokens, whoami) and acts as its own
// node only: registering, heartbeating or reporting for another node is
// 403, and so is a registration claiming an API URL; user tokens are
// refused by the agent routes.
func TestAgent_WorkerTokenDoesOnlyItsNodesCalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	wt := h.workerToken("gpu-1")
	h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil))
	for _, c := range []struct{ method, path string }{
		{"POST", "/apis/v2beta1/runs"}, {"GET", "/apis/v2beta1/runs"}, {"GET", "/apis/skiff/v1/runs"},
		{"GET", "/apis/skiff/v1/whoami"}, {"POST", "/apis/skiff/v1/tokens"}, {"GET", "/apis/skiff/v1/cluster"},
		{"GET", "/apis/v2beta1/experiments"}, {"GET", "/apis/skiff/v1/artifacts/sha256:" + strings.Repeat("0", 64)},
	} {
		var body any
		if c.method == "POST" {
			body = runBody(simPipeline, nil)
		}
		if r := h.do(c.method, c.path, wt, body); r.status != http.StatusForbidden {
			t.Errorf("%s %s with a worker token: status %d, want 403: %s", c.method, c.path, r.status, r.body)
		}
	}
	h.must(200, "POST", api.AgentPath+"/propose", wt, register("gpu-1", 1))
	now := time.Now().UTC()
	for name, tc := range map[string]struct {
		in   api.AgentProposal
		want int
		says string
	}{
		"register another": {register("gpu-2", 1), 403, "commands[0].register.node.id"},
		"heartbeat another": {api.AgentProposal{Commands: []api.AgentCommand{{Heartbeat: &store.Heartbeat{NodeID: "gpu-2", Epoch: 1, Time: now}}}}, 403,
			"commands[0].heartbeat.node_id"},
		"report another": {api.AgentProposal{Commands: []api.AgentCommand{
			{Heartbeat: &store.Heartbeat{NodeID: "gpu-1", Epoch: 1, Time: now}},
			{Report: &store.ReportExecution{ExecutionID: "x", NodeID: "gpu-2", Epoch: 1, Started: true, Time: now}}}}, 403, "commands[1].report.node_id"},
		"report as a server": {api.AgentProposal{Commands: []api.AgentCommand{{Report: &store.ReportExecution{ExecutionID: "x", NodeID: h.st.ID(), Epoch: 1, Time: now}}}}, 403,
			"commands[0].report.node_id"},
		"api url":    {api.AgentProposal{Commands: []api.AgentCommand{{Register: &store.RegisterNode{Node: store.Node{ID: "gpu-1", APIURL: "http://evil.example"}, Epoch: 2, Time: now}}}}, 400, "api_url"},
		"two in one": {api.AgentProposal{Commands: []api.AgentCommand{{Heartbeat: &store.Heartbeat{NodeID: "gpu-1", Epoch: 1, Time: now}, Report: &store.ReportExecution{NodeID: "gpu-1"}}}}, 400, "exactly one"},
		"none":       {api.AgentProposal{}, 400, "commands"},
	} {
		r := h.do("POST", api.AgentPath+"/propose", wt, tc.in)
		if r.status != tc.want || !strings.Contains(string(r.body), tc.says) {
			t.Errorf("%s: status %d %s, want %d and %q", name, r.status, r.body, tc.want, tc.says)
		}
	}
	n, err := h.st.Node("gpu-1")
	if err != nil || n.Epoch != 1 || n.APIURL != "" {
		t.Fatalf("node after the refused commands: %+v %v (want epoch 1, no API URL)", n, err)
	}
	if _, err := h.st.Node("gpu-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("gpu-2 registered by gpu-1's token: %v", err)
	}
	// Assignments and blobs: only the node's own executions.
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, path := range []string{api.AgentPath + "/assignments/nope/spec", api.AgentBlobsPath + "/" + digest + "?execution=nope"} {
		if r := h.do("GET", path, wt, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404: %s", path, r.status, r.body)
		}
	}
	if r := h.do("PUT", api.AgentBlobsPath+"/"+digest+"?execution=nope", wt, "data", "Content-Type", "application/octet-stream"); r.status != http.StatusNotFound {
		t.Errorf("upload for no execution: status %d, want 404: %s", r.status, r.body)
	}
	// Workspaces: only those a live execution of the node reads.
	bundle := []byte("not really a bundle")
	ws := store.WorkspaceDigest(bundle)
	if res, err := h.st.Apply(context.Background(), store.PutWorkspace{Namespace: "default", Digest: ws, Data: bundle, Time: now}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("put workspace: %+v %v", res, err)
	}
	for path, want := range map[string]int{
		api.AgentPath + "/workspaces/default/" + ws:                      http.StatusForbidden,
		api.AgentPath + "/workspaces/team-a/" + ws:                       http.StatusForbidden,
		api.AgentPath + "/workspaces/default/" + strings.Repeat("g", 64): http.StatusBadRequest,
		api.AgentPath + "/workspaces/%2e%2e/" + ws:                       http.StatusBadRequest,
	} {
		if r := h.do("GET", path, wt, nil); r.status != want || strings.Contains(string(r.body), string(bundle)) {
			t.Errorf("GET %s with a worker token that runs nothing: status %d, want %d: %s", path, r.status, want, r.body)
		}
	}
	for _, tok := range []string{h.admin, h.token("team-a", api.RoleEditor)} {
		if r := h.do("GET", api.AgentPath+"/state", tok, nil); r.status != http.StatusForbidden {
			t.Errorf("agent state with a user token: status %d, want 403", r.status)
		}
	}
	// A revoked worker token is refused.
	var rec store.Token
	toks, _ := h.st.ListTokens()
	for _, tk := range toks {
		if tk.NodeID == "gpu-1" {
			rec = tk
		}
	}
	if _, err := h.st.Apply(context.Background(), store.DeleteToken{ID: rec.ID}); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", api.AgentPath+"/state", wt, nil); r.status != http.StatusUnauthorized {
		t.Errorf("revoked worker token: status %d, want 401", r.status)
	}
}

// TestAgent_StateLongPollAndClient: the state route answers at once
// without ?since, waits with one until the node changes, and the agent
// client's copy follows: its Apply registers the node, Watch publishes
// the change to its subscriptions, and a dead server in its list is
// passed over.
func TestAgent_StateLongPollAndClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	wt := h.workerToken("gpu-1")
	var st api.AgentState
	h.must(200, "GET", api.AgentPath+"/state", wt, nil).json(t, &st)
	if st.NodeID != "gpu-1" || st.Node != nil || len(st.Assignments) != 0 || st.Version == "" {
		t.Fatalf("state before registering: %+v", st)
	}
	start := time.Now()
	r := h.must(200, "GET", api.AgentPath+"/state?wait=300ms&since="+st.Version, wt, nil)
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("a long poll with nothing changed answered after %s", el)
	}
	var same api.AgentState
	r.json(t, &same)
	if same.Version != st.Version {
		t.Errorf("version changed with nothing changed")
	}
	done := make(chan api.AgentState, 1)
	go func() {
		var got api.AgentState
		h.must(200, "GET", api.AgentPath+"/state?wait=20s&since="+st.Version, wt, nil).json(t, &got)
		done <- got
	}()
	time.Sleep(100 * time.Millisecond) // let the poll start waiting
	h.must(200, "POST", api.AgentPath+"/propose", wt, register("gpu-1", 1))
	select {
	case got := <-done:
		if got.Node == nil || got.Node.Epoch != 1 || got.Version == st.Version {
			t.Fatalf("the poll answered %+v", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll did not answer the registration")
	}

	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://127.0.0.1:1" // nothing listens there
	cfg := agentclient.DefaultConfig([]string{dead, h.http.URL}, wt, blobs)
	cfg.PollWait, cfg.RetryPause = 2*time.Second, 50*time.Millisecond
	cl, err := agentclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if cl.NodeID() != "gpu-1" || cl.Server() != h.http.URL {
		t.Fatalf("node %q via %q", cl.NodeID(), cl.Server())
	}
	sub := cl.Subscribe(0)
	defer sub.Close()
	watching, stop := context.WithCancel(ctx)
	defer stop()
	go cl.Watch(watching)
	res, err := cl.Apply(ctx, store.RegisterNode{Node: store.Node{ID: "gpu-1", Executors: []string{"sim"}}, Epoch: 2, Time: time.Now().UTC()})
	if err != nil || len(res.Rejected) > 0 {
		t.Fatalf("register: %v %+v", err, res.Rejected)
	}
	for {
		select {
		case <-sub.Ready():
		case <-ctx.Done():
			t.Fatal("the client's feed did not publish the registration")
		}
		changes, _ := sub.Next()
		if len(changes) > 0 && len(changes[0].Nodes) == 1 {
			break
		}
	}
	if n, err := cl.Node("gpu-1"); err != nil || n.Epoch != 2 {
		t.Fatalf("the client's copy: %+v %v", n, err)
	}
	if _, err := cl.Node("other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another node: %v", err)
	}
	_, err = cl.Apply(ctx, store.Heartbeat{NodeID: "gpu-2", Epoch: 1, Time: time.Now().UTC()})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.HTTPStatus() != http.StatusForbidden {
		t.Errorf("a heartbeat for another node through the client: %v, want 403", err)
	}
	if _, err := cl.Apply(ctx, store.MarkNodeDown{NodeID: "gpu-1"}); err == nil || !strings.Contains(err.Error(), "not an agent's command") {
		t.Errorf("MarkNodeDown sent: %v", err)
	}
}
