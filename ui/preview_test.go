package ui

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestPipelinePage_PreviewsAVersionsGraph(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	b, _ := json.Marshal(map[string]any{
		"pipeline":         map[string]any{"display_name": "loopy"},
		"pipeline_version": map[string]any{"display_name": "v1", "pipeline_spec": loopPipeline},
	})
	r := h.must(200, "POST", "/apis/v2beta1/pipelines/create", "", string(b), "Content-Type", "application/json")
	var pl struct {
		ID string `json:"pipeline_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &pl); err != nil || pl.ID == "" {
		t.Fatalf("create: %v %s", err, r.body)
	}
	page := h.must(200, "GET", "/pipelines/"+pl.ID, "", "").body
	contains(t, page, `<svg id="dag" class="preview"`, ">prep</text>", ">sweep</text>", "loop · 3 tasks inside", `class="current"`)
	if n := strings.Count(page, `<path d="M`); n != 1 {
		t.Fatalf("%d edges, want prep -> sweep", n)
	}
	href := regexp.MustCompile(`href="(/pipelines/[^"]*task=0)"`).FindStringSubmatch(page)
	if href == nil {
		t.Fatal("no link to a task")
	}
	task := h.must(200, "GET", strings.ReplaceAll(href[1], "&amp;", "&"), "", "").body
	contains(t, task, `id="task-panel"`, "echo prep", "node st-preview kind-task selected")
	h.must(404, "GET", "/pipelines/"+pl.ID+"?version=nope", "", "")
	h.must(404, "GET", strings.ReplaceAll(href[1], "&amp;", "&")+"9", "", "")
}

func TestCompileVersion_ReadsTheStoredForms(t *testing.T) {
	t.Parallel()
	str, _ := json.Marshal(simPipeline)
	for name, raw := range map[string]string{
		"a string":          string(str),
		"wrapped string":    `{"pipeline_spec": ` + string(str) + `}`,
		"a Skiff object":    `{"name": "o", "tasks": [{"name": "a", "command": ["true"]}]}`,
		"wrapped Skiff obj": `{"pipeline_spec": {"name": "o", "tasks": [{"name": "a", "command": ["true"]}]}}`,
	} {
		if p, err := compileVersion(json.RawMessage(raw)); err != nil || len(p.Tasks) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	ir, err := os.ReadFile("../engine/spec/kfp/testdata/artifact_metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	irStr, _ := json.Marshal(string(ir))
	if p, err := compileVersion(irStr); err != nil || len(p.Tasks) == 0 {
		t.Errorf("KFP IR: %v", err)
	}
	if _, err := compileVersion(json.RawMessage(`[1]`)); err == nil {
		t.Error("a list compiled")
	}
}
