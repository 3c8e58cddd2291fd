package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// harness is a server over a fresh data dir: sim (default) and local
// executors, local disabled unless a namespace policy allows it.
type harness struct {
	t     testing.TB
	st    *store.Store
	eng   *engine.Engine
	srv   *api.Server
	http  *httptest.Server
	reg   *prometheus.Registry
	admin string // token for every namespace
	blobs *blob.Store
	// workspace is api.Config.WorkspaceDir (pipeline files sent with runs).
	workspace string
}

type harnessOpts struct {
	noAuth bool
	sim    sim.Config
	clock  func() time.Time // the API's clock (recurring runs); nil = time.Now
	// defaultExecutor runs tasks that name none; "" = sim.
	defaultExecutor string
	allowedHosts    []string // api.Config.AllowedHosts
	launchKeys      *launch.Keys
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	dir := t.TempDir()
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = true
	reg := prometheus.NewRegistry()
	scfg.Registerer = reg
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	lx, err := local.New(local.DefaultConfig(filepath.Join(dir, "work"), blobs))
	if err != nil {
		t.Fatal(err)
	}
	events := api.NewEvents()
	ecfg := engine.DefaultConfig(st, sim.New(o.sim), lx)
	if o.defaultExecutor == "" {
		o.defaultExecutor = sim.Name
	}
	ecfg.DefaultExecutor = o.defaultExecutor
	ecfg.Registerer = reg
	ecfg.OnUpdate = events.Publish
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	srv, err := api.New(api.Config{
		Store: st, Engine: eng, Blobs: blobs, DefaultExecutor: o.defaultExecutor, DisabledExecutors: []string{"local"},
		NoAuth: o.noAuth, AllowedHosts: o.allowedHosts, Registerer: reg, Gatherer: reg, Version: "test", Clock: o.clock,
		LaunchKeys:   o.launchKeys,
		WorkspaceDir: filepath.Join(dir, "workspaces"),
	}, events)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	hs := httptest.NewServer(srv)
	h := &harness{t: t, st: st, eng: eng, srv: srv, http: hs, reg: reg, blobs: blobs, workspace: filepath.Join(dir, "workspaces")}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-done
		_ = st.Close()
	})
	h.admin = h.token(api.AllNamespaces, api.RoleAdmin)
	return h
}

// token creates a token through the store, as 'skiff token create' does.
func (h *harness) token(ns string, role api.Role) string {
	h.t.Helper()
	text, rec, err := api.NewToken(ns, role, "test", time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.st.Apply(context.Background(), store.CreateToken{Token: rec})
	if err != nil || len(res.Rejected) > 0 {
		h.t.Fatalf("create token: %v %v", err, res.Rejected)
	}
	return text
}

type resp struct {
	status int
	body   []byte
	hdr    http.Header
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) m(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

// do sends a request; body is a string (sent as is) or a value (as JSON),
// with Content-Type application/json unless hdr (name, value pairs; "Host"
// sets the Host header) says otherwise.
func (h *harness) do(method, path, token string, body any, hdr ...string) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: data, hdr: res.Header}
}

// must sends a request and fails the test unless the status is want.
func (h *harness) must(want int, method, path, token string, body any, hdr ...string) resp {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// waitRun polls GET /runs/{id} until the run is final.
func (h *harness) waitRun(id, token string) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m := h.must(200, "GET", "/apis/v2beta1/runs/"+id, token, nil).m(h.t)
		switch m["state"] {
		case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("run %s did not finish", id)
	return nil
}

const simPipeline = `name: hello
executor: sim
parameters:
  who: {type: string, default: world}
tasks:
  - name: greet
    command: [echo, "{{inputs.who}}"]
    inputs:
      who: {type: string, param: who}
  - name: shout
    after: [greet]
    command: [echo, loud]
`

// slowPipeline's task "wait" runs until cancelled (see slowSim).
const slowPipeline = `name: slow
executor: sim
tasks:
  - name: wait
    command: [sleep]
`

func slowSim() sim.Config {
	return sim.Config{Tasks: map[string]sim.Behavior{"wait": {Duration: time.Hour}}}
}

const localPipeline = `name: onhost
executor: local
tasks:
  - name: hi
    command: [/bin/sh, -c, "echo hi"]
`

func runBody(specText string, extra map[string]any) map[string]any {
	b := map[string]any{"display_name": "r", "pipeline_spec": specText}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

var _ = executors.ErrUnknownExecution
