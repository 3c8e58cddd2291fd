package api_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/skiffml/skiff/api"
)

func (h *harness) upload(path, token, content string) resp {
	h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("uploadfile", "pipeline.yaml")
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	return h.do("POST", path, token, buf.Bytes(), "Content-Type", mw.FormDataContentType())
}

func TestPipelines_UploadVersionsAndRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	tok := h.token("team-a", api.RoleEditor)
	r := h.upload("/apis/v2beta1/pipelines/upload?display_name=hello", tok, simPipeline)
	if r.status != 200 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var pl api.Pipeline
	r.json(t, &pl)
	if pl.PipelineID == "" || pl.Namespace != "team-a" || pl.DisplayName != "hello" {
		t.Fatalf("pipeline %+v", pl)
	}
	if r := h.upload("/apis/v2beta1/pipelines/upload?display_name=hello", tok, simPipeline); r.status != 409 {
		t.Fatalf("duplicate name: %d", r.status)
	}
	if r := h.upload("/apis/v2beta1/pipelines/upload?display_name=bad", tok, "name: [\n"); r.status != 400 {
		t.Fatalf("bad spec: %d", r.status)
	}
	if r := h.upload("/apis/v2beta1/pipelines/upload?display_name=ir", tok, "pipelineInfo: {name: x}\nroot: {}\n"); r.status != 400 || !strings.Contains(string(r.body), "root.dag") {
		t.Fatalf("IR upload: %d %s", r.status, r.body)
	}
	if r := h.upload("/apis/v2beta1/pipelines/upload?display_name=big", tok, strings.Repeat("#", 5<<20)); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized upload: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/apis/v2beta1/pipelines/upload?display_name=x", tok, `{}`); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("upload of a JSON body: %d", r.status)
	}
	if r := h.do("POST", "/apis/v2beta1/pipelines/upload?display_name=x", tok, "--b--\r\n", "Content-Type", "multipart/form-data; boundary=b"); r.status != 400 {
		t.Fatalf("upload without a file: %d %s", r.status, r.body)
	}
	v2 := h.upload("/apis/v2beta1/pipelines/upload_version?pipelineid="+pl.PipelineID+"&name=v2", tok, strings.Replace(simPipeline, "default: world", "default: v2", 1))
	if v2.status != 200 {
		t.Fatalf("upload_version: %d %s", v2.status, v2.body)
	}
	var ver api.PipelineVersion
	v2.json(t, &ver)
	if !strings.HasPrefix(ver.Digest, "sha256:") || ver.PipelineID != pl.PipelineID {
		t.Fatalf("version %+v", ver)
	}
	var vs api.ListPipelineVersionsResponse
	h.must(200, "GET", "/apis/v2beta1/pipelines/"+pl.PipelineID+"/versions", tok, nil).json(t, &vs)
	if vs.TotalSize != 2 {
		t.Fatalf("versions %+v", vs)
	}
	h.must(200, "GET", "/apis/v2beta1/pipelines/names/hello", tok, nil)
	h.must(200, "GET", "/apis/v2beta1/pipelines/"+pl.PipelineID+"/versions/"+ver.PipelineVersionID, tok, nil)
	// A run from the version reference.
	run := h.must(200, "POST", "/apis/v2beta1/runs", tok, map[string]any{"display_name": "from version",
		"pipeline_version_reference": map[string]any{"pipeline_id": pl.PipelineID, "pipeline_version_id": ver.PipelineVersionID}}).m(t)
	final := h.waitRun(run["run_id"].(string), tok)
	if final["state"] != "SUCCEEDED" || final["runtime_config"].(map[string]any)["parameters"].(map[string]any)["who"] != "v2" {
		t.Fatalf("run %v", final)
	}
	if ref := final["pipeline_version_reference"].(map[string]any); ref["pipeline_version_id"] != ver.PipelineVersionID {
		t.Fatalf("reference %v", ref)
	}
	// JSON create paths.
	h.must(200, "POST", "/apis/v2beta1/pipelines", tok, map[string]any{"display_name": "empty"})
	h.must(200, "POST", "/apis/v2beta1/pipelines/create", tok, map[string]any{"pipeline": map[string]any{"display_name": "both"},
		"pipeline_version": map[string]any{"pipeline_spec": simPipeline}})
	h.must(200, "POST", "/apis/v2beta1/pipelines/"+pl.PipelineID+"/versions", tok, map[string]any{"display_name": "v3", "pipeline_spec": simPipeline})
	var list api.ListPipelinesResponse
	h.must(200, "GET", "/apis/v2beta1/pipelines?sort_by=display_name", tok, nil).json(t, &list)
	if list.TotalSize != 3 {
		t.Fatalf("pipelines %+v", list)
	}
	// Another namespace sees none of it.
	other := h.token("team-b", api.RoleEditor)
	h.must(404, "GET", "/apis/v2beta1/pipelines/"+pl.PipelineID, other, nil)
	h.must(404, "GET", "/apis/v2beta1/pipelines/names/hello", other, nil)
	h.must(404, "GET", "/apis/v2beta1/pipelines/"+pl.PipelineID+"/versions", other, nil)
	h.must(404, "DELETE", "/apis/v2beta1/pipelines/"+pl.PipelineID, other, nil)
	h.must(404, "POST", "/apis/v2beta1/runs", other, map[string]any{"display_name": "x",
		"pipeline_version_reference": map[string]any{"pipeline_version_id": ver.PipelineVersionID}})
	if r := h.upload("/apis/v2beta1/pipelines/upload_version?pipelineid="+pl.PipelineID+"&name=v9", other, simPipeline); r.status != 404 {
		t.Fatalf("upload_version across namespaces: %d", r.status)
	}
	h.must(200, "DELETE", "/apis/v2beta1/pipelines/"+pl.PipelineID+"/versions/"+ver.PipelineVersionID, tok, nil)
	h.must(200, "DELETE", "/apis/v2beta1/pipelines/"+pl.PipelineID, tok, nil)
	h.must(404, "GET", "/apis/v2beta1/pipelines/"+pl.PipelineID, tok, nil)
}
