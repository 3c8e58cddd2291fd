package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec/spectest"
)

// Inputs that are small on the wire but expand enormously are refused in
// milliseconds with 413 naming the limit, through every route that
// compiles a pipeline; so is an oversized JSON body.
func TestLimits_BombsRefusedFast(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	skiffBomb := string(spectest.AliasBomb("name: bomb\n", 4, 10, 64<<10))
	kfpBomb := string(spectest.AliasBomb("pipelineInfo: {name: bomb}\n", 4, 10, 64<<10))
	reuse := string(spectest.KFPReuseBomb(8, 10))
	const sizeLimit, taskLimit = "YAML expanded size limit of 33554432 bytes", "compiled task limit of 10000 tasks"
	cases := []struct {
		name string
		send func() resp
		want string
	}{
		{"run, skiff yaml", func() resp { return h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(skiffBomb, nil)) }, sizeLimit},
		{"run, kfp yaml", func() resp { return h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(kfpBomb, nil)) }, sizeLimit},
		{"run, kfp reuse", func() resp { return h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(reuse, nil)) }, taskLimit},
		{"upload", func() resp { return h.upload("/apis/v2beta1/pipelines/upload?display_name=bomb", h.admin, skiffBomb) }, sizeLimit},
		{"upload, kfp reuse", func() resp { return h.upload("/apis/v2beta1/pipelines/upload?display_name=reuse", h.admin, reuse) }, taskLimit},
		{"create pipeline and version", func() resp {
			return h.do("POST", "/apis/v2beta1/pipelines/create", h.admin, map[string]any{
				"pipeline": map[string]any{"display_name": "bomb"}, "pipeline_version": map[string]any{"pipeline_spec": kfpBomb}})
		}, sizeLimit},
		{"recurring run", func() resp {
			return h.do("POST", "/apis/v2beta1/recurringruns", h.admin, map[string]any{"display_name": "bomb", "pipeline_spec": skiffBomb,
				"trigger": map[string]any{"periodic_schedule": map[string]any{"interval_second": "60"}}})
		}, sizeLimit},
		{"oversized json body", func() resp {
			return h.do("POST", "/apis/v2beta1/experiments", h.admin, `{"display_name":"`+strings.Repeat("x", 9<<20)+`"}`)
		}, "JSON body limit of 8388608 bytes"},
	}
	for _, tc := range cases {
		start := time.Now()
		r := tc.send()
		el := time.Since(start)
		var e api.Error
		if r.status != 413 {
			t.Errorf("%s: status %d, want 413: %.300s", tc.name, r.status, r.body)
			continue
		}
		r.json(t, &e)
		if !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: message %q does not name the limit (%q)", tc.name, e.Message, tc.want)
		}
		// Milliseconds on an idle machine (the parsers' own tests hold them
		// to a second); the bound leaves room for -race on a loaded one,
		// and is still far below the minute the alias bomb took unbounded
		// (10 s was once exceeded, 10.3 s at load 14).
		if el > 30*time.Second {
			t.Errorf("%s: refusing took %s", tc.name, el)
		}
	}
	for _, path := range []string{"/apis/v2beta1/runs", "/apis/v2beta1/pipelines", "/apis/v2beta1/recurringruns", "/apis/v2beta1/experiments"} {
		if l := h.must(200, "GET", path, h.admin, nil).m(t); len(l) != 0 {
			t.Errorf("refused input created something: %s: %v", path, l)
		}
	}
}
