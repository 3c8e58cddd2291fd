package ui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// metricsPipeline writes KFP's classification metrics JSON, as the kfp
// SDK's ClassificationMetrics and SlicedClassificationMetrics record it,
// and a directory artifact.
const metricsPipeline = `name: eval
executor: local
tasks:
  - name: evaluate
    command: [/bin/sh, -c]
    args:
      - |
        cat > "$0" <<'JSON'
        {"confusionMatrix": {"annotationSpecs": [{"displayName": "setosa"}, {"displayName": "versicolor"}, {"displayName": "virginica"}],
          "rows": [{"row": [50, 0, 0]}, {"row": [0, 47, 3]}, {"row": [0, 2, 48]}]},
         "confidenceMetrics": [{"confidenceThreshold": 0.9, "recall": 0.5, "falsePositiveRate": 0.0},
          {"confidenceThreshold": 0.5, "recall": 0.9, "falsePositiveRate": 0.2},
          {"confidenceThreshold": 0.1, "recall": 1.0, "falsePositiveRate": 0.6}]}
        JSON
        cat > "$1" <<'JSON'
        {"evaluationSlices": [
          {"slice": "country=US", "sliceClassificationMetrics": {"confusionMatrix": {"annotationSpecs": [{"displayName": "yes"}, {"displayName": "no"}], "rows": [{"row": [40, 10]}, {"row": [5, 45]}]}}},
          {"struct": {"slice": "country=CA", "sliceClassificationMetrics": {"struct": {"confidenceMetrics": {"list": [{"recall": 0.7, "falsePositiveRate": 0.1}, {"recall": 1, "falsePositiveRate": 0.5}]}}}}}]}
        JSON
        mkdir -p "$2/sub"
        echo hello > "$2/a.txt"
        printf '# Notes\n<script>alert(1)</script>\n' > "$2/sub/readme.md"
      - "{{outputs.cm}}"
      - "{{outputs.sliced}}"
      - "{{outputs.model}}"
    outputs:
      cm: ClassificationMetrics
      sliced: Artifact
      model: Model
`

func TestArtifactPages_ClassificationSlicedAndDirectoryFromARealStep(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit("eval", metricsPipeline)
	if r := h.waitRun(id); r.State != spec.RunSucceeded {
		t.Fatalf("run %v: %s", r.State, r.Error)
	}
	base := "/runs/" + id + "/tasks/0/outputs/"

	cm := h.must(200, "GET", base+"cm", "", "").body
	contains(t, cm, "Confusion matrix", ">setosa</text>", ">virginica</text>", ">47</text>", ">3</text>", "ROC curve")
	// the diagonal's top cell is the darkest; an empty cell is the lightest
	if !regexp.MustCompile(`fill-opacity="1.000"/><text[^>]*>50<`).MatchString(cm) || !regexp.MustCompile(`fill-opacity="0.040"/><text[^>]*>0<`).MatchString(cm) {
		t.Fatalf("heat map shades:\n%s", cm)
	}
	// trapezoids through (0,0) (0,.5) (.2,.9) (.6,1) (1,1): .14 + .38 + .4
	contains(t, cm, "AUC 0.920")

	sl := h.must(200, "GET", base+"sliced", "", "").body
	contains(t, sl, "<h2>country=US</h2>", "<h2>country=CA</h2>", ">45</text>", "AUC 0.875")
	if n := strings.Count(sl, `class="card artifact slice"`); n != 2 {
		t.Fatalf("%d slice cards, want 2", n)
	}

	dir := h.must(200, "GET", base+"model", "", "").body
	contains(t, dir, `class="grid files"`, ">a.txt</a>", "sub/", ">sub/readme.md</a>", "Download .tar")
	md := h.must(200, "GET", base+"model?file=sub/readme.md", "", "").body
	contains(t, md, "<h1>Notes</h1>", "in directory model")
	lacks(t, md, "<script>alert")
	raw := h.must(200, "GET", base+"model/raw?file=a.txt&download=1", "", "")
	if raw.body != "hello\n" || !strings.Contains(raw.hdr.Get("Content-Disposition"), `filename="a.txt"`) {
		t.Fatalf("file download: %q %q", raw.body, raw.hdr.Get("Content-Disposition"))
	}
	h.must(404, "GET", base+"model?file=../../etc/passwd", "", "")
	h.must(404, "GET", base+"model/raw?file=nope.txt", "", "")
}

func FuzzArtifactViews(f *testing.F) {
	f.Add([]byte(`{"evaluationSlices": [{"slice": "a", "sliceClassificationMetrics": {"confusionMatrix": {"annotationSpecs": [{"displayName": "x"}], "rows": [{"row": [1]}]}}}]}`), []byte(`{}`))
	f.Add([]byte(`{"confusionMatrix": {"annotationSpecs": [{"displayName": "x"}, {}], "rows": [[1, 2], {"row": [3, "a"]}]}, "confidenceMetrics": [{"recall": 2, "falsePositiveRate": -1}, {}]}`), []byte(`{"struct": {"list": [1]}}`))
	f.Add([]byte("a,b\n1,2\n"), []byte(nil))
	f.Fuzz(func(t *testing.T, content, meta []byte) {
		for _, typ := range []spec.Type{spec.TypeClassificationMetrics, spec.TypeMetrics, spec.TypeArtifact, spec.TypeMarkdown} {
			var d artifactData
			d.fill(typ, decodeJSON(meta), content)
			if d.View == "" {
				t.Fatalf("%s: no view", typ)
			}
		}
	})
}

// kfpMetricsPipeline is KFP IR whose step describes its
// ClassificationMetrics and SlicedClassificationMetrics only by metadata,
// in its ExecutorOutput file, as the kfp SDK's launcher records them.
const kfpMetricsPipeline = `pipelineInfo: {name: kfp-metrics}
components:
  comp-evaluate:
    executorLabel: exec-evaluate
    outputDefinitions:
      artifacts:
        cm: {artifactType: {schemaTitle: system.ClassificationMetrics, schemaVersion: 0.0.1}}
        sliced: {artifactType: {schemaTitle: system.SlicedClassificationMetrics, schemaVersion: 0.0.1}}
deploymentSpec:
  executors:
    exec-evaluate:
      container:
        image: alpine
        command: [sh, -c, 'printf %s "$1" > "$0"', "{{$.outputs.output_file}}",
          '{"artifacts": {"cm": {"artifacts": [{"name": "cm", "metadata": {"confusionMatrix": {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}], "rows": [{"row": [9, 1]}, {"row": [2, 8]}]}, "confidenceMetrics": [{"confidenceThreshold": 0.5, "recall": 0.8, "falsePositiveRate": 0.1}]}}]},
            "sliced": {"artifacts": [{"name": "sliced", "metadata": {"evaluationSlices": [{"slice": "overall", "sliceClassificationMetrics": {"confidenceMetrics": [{"recall": 0.6, "falsePositiveRate": 0.2}, {"recall": 0.9, "falsePositiveRate": 0.4}]}}]}}]}}}']
root:
  dag:
    tasks:
      evaluate:
        componentRef: {name: comp-evaluate}
        taskInfo: {name: evaluate}
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.6
`

func TestArtifactPages_KFPMetricsFromExecutorOutputMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{executor: "local"})
	id := h.submit("kfp-metrics", kfpMetricsPipeline)
	if r := h.waitRun(id); r.State != spec.RunSucceeded {
		t.Fatalf("run %v: %s", r.State, r.Error)
	}
	base := "/runs/" + id + "/tasks/0/outputs/"
	cm := h.must(200, "GET", base+"cm", "", "").body
	contains(t, cm, ">cat</text>", ">dog</text>", ">9</text>", ">8</text>", "ROC curve", "AUC 0.850")
	sl := h.must(200, "GET", base+"sliced", "", "").body
	contains(t, sl, "<h2>overall</h2>", "ROC curve", "AUC 0.780")
}
