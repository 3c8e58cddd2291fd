package ui

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

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// harness is a real API + UI over a fresh data dir, as skiff server
// mounts them: sim (default) and local executors.
type harness struct {
	t     testing.TB
	st    *store.Store
	srv   *httptest.Server
	ui    *Server
	admin string // a token for every namespace ("" with noAuth)
}

type harnessOpts struct {
	// executor runs what names none (KFP pipelines); "" = sim
	executor string
	auth     bool
	pageSize int
	sim      sim.Config
	// cluster gives the API a cluster membership (a one-voter cluster),
	// as skiff server has.
	cluster bool
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	dir := t.TempDir()
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = true
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
	ecfg.OnUpdate = events.Publish
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	if o.executor == "" {
		o.executor = sim.Name
	}
	acfg := api.Config{Store: st, Engine: eng, Blobs: blobs, DefaultExecutor: o.executor, NoAuth: !o.auth}
	if o.cluster {
		if acfg.Cluster, err = cluster.New(cluster.DefaultConfig("http://127.0.0.1:1"), st, nil); err != nil {
			t.Fatal(err)
		}
	}
	apiSrv, err := api.New(acfg, events)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv.SetReady(true)
	cfg := DefaultConfig(st, blobs, apiSrv)
	if o.pageSize > 0 {
		cfg.PageSize = o.pageSize
	}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(Mount(apiSrv, u))
	h := &harness{t: t, st: st, srv: hs, ui: u}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-done
		_ = st.Close()
	})
	if o.auth {
		h.admin = h.token(api.AllNamespaces, api.RoleAdmin)
	}
	return h
}

func (h *harness) token(ns string, role api.Role) string {
	h.t.Helper()
	text, rec, err := api.NewToken(ns, role, "test", time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if res, err := h.st.Apply(context.Background(), store.CreateToken{Token: rec}); err != nil || len(res.Rejected) > 0 {
		h.t.Fatalf("create token: %v %v", err, res.Rejected)
	}
	return text
}

type resp struct {
	status int
	body   string
	hdr    http.Header
}

// do sends a request with the harness's cookie (if any); hdr are pairs.
func (h *harness) do(method, path, cookie, body string, hdr ...string) resp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := h.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: string(data), hdr: res.Header}
}

func (h *harness) must(want int, method, path, cookie, body string, hdr ...string) resp {
	h.t.Helper()
	r := h.do(method, path, cookie, body, hdr...)
	if r.status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %.600s", method, path, r.status, want, r.body)
	}
	return r
}

// submit creates a run through the API and returns its id.
func (h *harness) submit(name, pipeline string) string {
	h.t.Helper()
	return h.submitWith(name, pipeline, nil)
}

// submitWith creates a run with parameters params.
func (h *harness) submitWith(name, pipeline string, params map[string]any) string {
	h.t.Helper()
	return h.submitBody(map[string]any{"display_name": name, "pipeline_spec": pipeline}, params)
}

// submitBody creates a run from body (plus parameters params).
func (h *harness) submitBody(body map[string]any, params map[string]any) string {
	h.t.Helper()
	if params != nil {
		body["runtime_config"] = map[string]any{"parameters": params}
	}
	b, _ := json.Marshal(body)
	hdr := []string{"Content-Type", "application/json"}
	if h.admin != "" {
		hdr = append(hdr, "Authorization", "Bearer "+h.admin)
	}
	r := h.must(200, "POST", "/apis/v2beta1/runs", "", string(b), hdr...)
	var run struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &run); err != nil {
		h.t.Fatal(err)
	}
	return run.RunID
}

// waitRun polls the store until the run is final.
func (h *harness) waitRun(id string) store.Run {
	h.t.Helper()
	return h.waitRunWithin(id, 30*time.Second)
}

// waitRunWithin polls the store until the run is final, for at most d.
func (h *harness) waitRunWithin(id string, d time.Duration) store.Run {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r, err := h.st.GetRun(id)
		if err == nil && r.State.Final() {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("run %s did not finish", id)
	return store.Run{}
}

// scorePipeline writes a Metrics artifact whose accuracy and loss come
// from its parameters.
const scorePipeline = `name: score
executor: local
parameters:
  acc: {type: float, default: 0.5}
  loss: {type: float, default: 1}
  lr: {type: float, default: 0.1}
tasks:
  - name: train
    command: [/bin/sh, -c, 'printf "{\"accuracy\": %s, \"loss\": %s}" "$0" "$1" > "$2"', "{{inputs.acc}}", "{{inputs.loss}}", "{{outputs.metrics}}"]
    inputs:
      acc: {type: float, param: acc}
      loss: {type: float, param: loss}
      lr: {type: float, param: lr}
    outputs:
      metrics: Metrics
`

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

// artifactPipeline writes one artifact of each kind the UI draws, with
// script payloads that must stay inert.
const artifactPipeline = `name: artifacts
executor: local
tasks:
  - name: make
    command: [/bin/sh, -c]
    args:
      - |
        printf '# Report\n\n<script>alert(1)</script><img src=x onerror=alert(2)>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n' > "$0"
        printf '<h1>hi</h1><script>parent.document.title="pwned"</script>' > "$1"
        printf 'x,y,label\n1,2,a\n3,4,b\n' > "$2"
        printf '{"accuracy": 0.93, "loss": 0.21}' > "$3"
        echo '<script>alert("log")</script> done'
      - "{{outputs.report}}"
      - "{{outputs.page}}"
      - "{{outputs.data}}"
      - "{{outputs.metrics}}"
    outputs:
      report: Markdown
      page: HTML
      data: Dataset
      metrics: Metrics
`

func contains(t testing.TB, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Fatalf("page lacks %q:\n%.2000s", w, body)
		}
	}
}

func lacks(t testing.TB, body string, bads ...string) {
	t.Helper()
	for _, b := range bads {
		if strings.Contains(body, b) {
			i := strings.Index(body, b)
			t.Fatalf("page holds %q: …%s…", b, body[max(0, i-200):min(len(body), i+200)])
		}
	}
}

var _ = bytes.NewReader

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
