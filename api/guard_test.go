package api_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/skiffml/skiff/api"
)

// What a web page can make a browser send to a --no-auth server on
// loopback (CSRF, DNS rebinding) is refused before it reaches a route.
func TestGuard_NoAuthRefusesBrowserRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{noAuth: true})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(h.http.URL, "http://"))
	const exps = "/apis/v2beta1/experiments"
	body := `{"display_name":"csrf"}`
	refused := []struct {
		name   string
		status int
		hdr    []string
		want   string
	}{
		{"text/plain from a foreign origin", 403, []string{"Content-Type", "text/plain", "Origin", "http://evil.example"}, "Origin"},
		{"json from a foreign origin", 403, []string{"Origin", "http://evil.example"}, "Origin"},
		{"null origin", 403, []string{"Origin", "null"}, "Origin"},
		{"loopback origin on another port", 403, []string{"Origin", "http://127.0.0.1:1"}, "Origin"},
		{"rebound host name", 403, []string{"Host", "evil.example:" + port}, "Host"},
		{"rebound host, its own origin", 403, []string{"Host", "evil.example:" + port, "Origin", "http://evil.example:" + port}, "Host"},
		{"cross-site fetch", 403, []string{"Sec-Fetch-Site", "cross-site"}, "cross-site"},
		{"text/plain", 415, []string{"Content-Type", "text/plain"}, "application/json"},
		{"form", 415, []string{"Content-Type", "application/x-www-form-urlencoded"}, "application/json"},
		{"multipart outside uploads", 415, []string{"Content-Type", "multipart/form-data; boundary=x"}, "application/json"},
		{"no content type", 415, []string{"Content-Type", ""}, "application/json"},
	}
	for _, tc := range refused {
		r := h.do("POST", exps, "", body, tc.hdr...)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: status %d, want %d naming %s: %s", tc.name, r.status, tc.status, tc.want, r.body)
		}
	}
	// Reads through a rebound name are refused too (they would leak data).
	h.must(403, "GET", exps, "", nil, "Host", "evil.example:"+port)
	h.must(403, "GET", "/apis/v2beta1/runs", "", nil, "Host", "evil.example")
	if l := h.must(200, "GET", exps, "", nil).m(t); len(l) != 0 {
		t.Fatalf("refused requests created experiments: %v", l)
	}
	// What the CLI, the kfp client and a same-origin page send is served.
	for _, hdr := range [][]string{
		nil,
		{"Content-Type", "application/json; charset=utf-8"},
		{"Host", "localhost:" + port},
		{"Host", "[::1]:" + port},
		{"Origin", h.http.URL, "Sec-Fetch-Site", "same-origin"},
	} {
		h.must(200, "POST", exps, "", map[string]any{"display_name": "ok-" + strings.Join(hdr, "-")}, hdr...)
	}
	// A POST without a body needs no Content-Type; health checks answer
	// whatever the Host.
	id := h.must(200, "POST", "/apis/v2beta1/runs", "", runBody(simPipeline, nil)).m(t)["run_id"].(string)
	h.waitRun(id, "")
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":archive", "", nil, "Content-Type", "")
	h.must(200, "GET", "/healthz", "", nil, "Host", "10.1.2.3:"+port)
	if m := string(h.must(200, "GET", "/metrics", "", nil).body); !strings.Contains(m, "skiff_api_requests_refused_total 13") {
		t.Errorf("refusals not counted: %s", m[strings.Index(m, "\nskiff_api_requests_refused"):][:60])
	}
}

// With auth on, the same checks apply; the server's real names are
// accepted once configured.
func TestGuard_AuthAllowedHosts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{allowedHosts: []string{"skiff.example", "10.0.0.7"}})
	const exps = "/apis/v2beta1/experiments"
	for _, host := range []string{"skiff.example", "SKIFF.example:8888", "10.0.0.7:443", "127.0.0.1"} {
		h.must(200, "GET", exps, h.admin, nil, "Host", host)
	}
	h.must(200, "POST", exps, h.admin, map[string]any{"display_name": "same-origin"}, "Host", "skiff.example", "Origin", "https://skiff.example")
	h.must(403, "GET", exps, h.admin, nil, "Host", "evil.example")
	h.must(403, "POST", exps, h.admin, map[string]any{"display_name": "x"}, "Host", "skiff.example", "Origin", "https://evil.example")
	h.must(415, "POST", exps, h.admin, `{"display_name":"x"}`, "Content-Type", "text/plain")

	any := newHarness(t, harnessOpts{allowedHosts: []string{api.AnyHost}})
	any.must(200, "GET", exps, any.admin, nil, "Host", "whatever.example")
}

func TestConfig_AnyHostNeedsAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	_, err := api.New(api.Config{Store: h.st, Engine: h.eng, NoAuth: true, AllowedHosts: []string{api.AnyHost}}, nil)
	if err == nil || !strings.Contains(err.Error(), "AllowedHosts") {
		t.Fatalf("New: %v", err)
	}
}

// The api Client's requests pass the checks (JSON bodies, multipart
// uploads, bodiless actions).
func TestGuard_ClientPasses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{noAuth: true, sim: slowSim()})
	c := api.NewClient(h.http.URL, "")
	c.HTTP = h.http.Client()
	ctx := t.Context()
	if _, err := c.UploadPipeline(ctx, "p", "", "", "p.yaml", []byte(simPipeline)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	specJSON, _ := json.Marshal(slowPipeline)
	run, err := c.CreateRun(ctx, api.Run{DisplayName: "r", PipelineSpec: specJSON}, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.TerminateRun(ctx, run.RunID); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if _, err := c.SetNamespacePolicy(ctx, "team-a", nil); err != nil {
		t.Fatalf("policy: %v", err)
	}
	var e *api.Error
	if _, err := c.CreateExperiment(ctx, api.Experiment{}); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Fatalf("bad create: %v", err)
	}
}
