package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/skiffml/skiff/api"
)

// A page in the user's browser cannot drive 'skiff server --no-auth': a
// cross-site text/plain POST and a request through a rebound DNS name are
// refused, while the CLI's own requests work.
func TestCLI_ServerNoAuthRefusesBrowserRequests(t *testing.T) {
	t.Parallel()
	base := startServer(t, t.TempDir())
	post := func(hdr ...string) int {
		t.Helper()
		req, err := http.NewRequest("POST", base+"/apis/v2beta1/experiments", strings.NewReader(`{"display_name":"csrf"}`))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := post("Content-Type", "text/plain", "Origin", "http://evil.example"); s != 403 {
		t.Errorf("cross-site text/plain POST: %d", s)
	}
	if s := post("Content-Type", "application/json", "Host", "evil.example"); s != 403 {
		t.Errorf("rebound Host: %d", s)
	}
	if s := post("Content-Type", "text/plain"); s != 415 {
		t.Errorf("text/plain POST: %d", s)
	}
	cl := api.NewClient(base, "")
	if _, err := cl.CreateExperiment(t.Context(), api.Experiment{DisplayName: "cli"}); err != nil {
		t.Fatalf("the api client is refused: %v", err)
	}
	if l, err := cl.ListExperiments(t.Context(), api.ListOptions{}); err != nil || len(l.Experiments) != 1 {
		t.Fatalf("experiments %+v %v: want only the client's", l, err)
	}
}

func TestAllowedHosts_Defaults(t *testing.T) {
	t.Parallel()
	if h, err := allowedHosts("127.0.0.1:8888", nil, true); err != nil || !slices.Equal(h, []string{"127.0.0.1"}) {
		t.Errorf("loopback: %v %v", h, err)
	}
	if h, err := allowedHosts("skiff.example:8888", nil, false); err != nil || !slices.Equal(h, []string{"skiff.example"}) {
		t.Errorf("named: %v %v", h, err)
	}
	if h, err := allowedHosts(":8888", []string{"a.example", " "}, false); err != nil || !slices.Equal(h, []string{"a.example"}) {
		t.Errorf("given: %v %v", h, err)
	}
	h, err := allowedHosts("0.0.0.0:8888", nil, false)
	if err != nil || !slices.Contains(h, "127.0.0.1") || len(h) < 2 {
		t.Errorf("unspecified: %v %v: want this host's name and addresses", h, err)
	}
	if _, err := allowedHosts("127.0.0.1:8888", []string{api.AnyHost}, true); err == nil {
		t.Error("--allowed-host '*' with --no-auth accepted")
	}
}
