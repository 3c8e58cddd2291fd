package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
	"github.com/skiffml/skiff/store"
)

// pipelineData is a pipeline page: its versions and a graph preview of
// one of them.
type pipelineData struct {
	pipelineRow
	Selected  *store.PipelineVersion
	Graph     *graphView
	Params    []spec.Param
	Task      *previewTask
	Error     string // why the version could not be previewed
	ClearTask string // the page without a selected task
}

// previewTask is the side panel of a task of a previewed version.
type previewTask struct {
	Name, Description, Image, Command, Executor, Kind string
	Inputs                                            []ioRow
	Outputs                                           []spec.Output
	Body                                              int // tasks of a group's body
}

func (s *Server) pipelinePage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	p, err := s.cfg.Store.GetPipeline(r.PathValue("id"))
	if err != nil || !v.sees(p.Namespace) {
		return fmt.Errorf("%w: pipeline %s", ErrNotFound, r.PathValue("id"))
	}
	vs, err := s.cfg.Store.ListPipelineVersions(p.ID)
	if err != nil {
		return err
	}
	slices.SortFunc(vs, func(a, b store.PipelineVersion) int { return b.CreatedAt.Compare(a.CreatedAt) })
	d := pipelineData{pipelineRow: pipelineRow{Pipeline: p, Versions: vs}}
	q := r.URL.Query()
	want := q.Get("version")
	for i := range vs {
		if want == "" && i == 0 || vs[i].ID == want {
			d.Selected = &vs[i]
		}
	}
	if want != "" && d.Selected == nil {
		return fmt.Errorf("%w: version %q of pipeline %s", ErrNotFound, want, p.Name)
	}
	if d.Selected != nil {
		if err := s.preview(&d, q.Get("task")); err != nil {
			return err
		}
	}
	s.render(w, r, http.StatusOK, "pipeline", v, d)
	return nil
}

// preview compiles the selected version and draws its top level; a
// version that does not compile says why instead.
func (s *Server) preview(d *pipelineData, task string) error {
	plan, err := compileVersion(d.Selected.Spec)
	if err != nil {
		d.Error = err.Error()
		return nil
	}
	l, err := s.layout(plan)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("/pipelines/%s?version=%s", d.ID, d.Selected.ID)
	d.ClearTask = base
	selected := -1
	if task != "" {
		j, err := strconv.Atoi(task)
		if err != nil || j < 0 || j >= len(plan.Tasks) {
			return fmt.Errorf("%w: task %q of this version", ErrNotFound, task)
		}
		selected = j
		d.Task = previewTaskOf(plan, j)
	}
	g := drawGraph(plan, l, func(j int, n *nodeView) {
		n.State, n.Selected = "PREVIEW", j == selected
		n.Href = base + "&task=" + strconv.Itoa(j)
		if b := plan.Tasks[j].Body; b != nil {
			n.Total = len(b.Tasks)
		}
	})
	d.Graph, d.Params = &g, plan.Params
	return nil
}

func previewTaskOf(plan *spec.Plan, j int) *previewTask {
	t := &plan.Tasks[j]
	pt := &previewTask{Name: t.Name, Description: t.Description, Image: t.Image, Executor: t.Executor, Kind: "step", Outputs: t.Outputs,
		Command: strings.Join(append(slices.Clone(t.Command), t.Args...), " ")}
	if t.Body != nil {
		pt.Kind, pt.Body = "sub-pipeline", len(t.Body.Tasks)
		if t.ParallelFor != nil {
			pt.Kind = "loop"
		}
	}
	for _, in := range t.Inputs {
		row := ioRow{Name: in.Name, Type: string(in.Type)}
		switch {
		case in.From != nil:
			row.Source = in.From.Task + "." + in.From.Output
		case in.Param != "":
			row.Source = "parameter " + in.Param
		case in.UpstreamStatus:
			row.Source = "upstream status"
		default:
			row.Source, row.Value = "value", shortJSON(in.Value)
		}
		pt.Inputs = append(pt.Inputs, row)
	}
	return pt
}

// compileVersion compiles a stored pipeline version's spec as the API
// does for a run: a Skiff YAML or KFP document as a string, a KFP
// PipelineSpec (or Skiff document) as an object, or {pipeline_spec,
// platform_spec} around a KFP one.
func compileVersion(raw json.RawMessage) (*spec.Plan, error) {
	raw = bytes.TrimSpace(raw)
	var text string
	if json.Unmarshal(raw, &text) == nil {
		plan, _, err := kfp.Load([]byte(text), "", kfp.Options{})
		return plan, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("spec: not a pipeline document: %w", err)
	}
	inner, ok := obj["pipeline_spec"]
	if !ok {
		plan, _, err := kfp.Load(raw, "", kfp.Options{})
		return plan, err
	}
	var p, pl any
	if err := json.Unmarshal(inner, &p); err != nil {
		return nil, fmt.Errorf("spec.pipeline_spec: %w", err)
	}
	if ps, ok := obj["platform_spec"]; ok && len(ps) > 0 && !bytes.Equal(ps, []byte("null")) {
		if err := json.Unmarshal(ps, &pl); err != nil {
			return nil, fmt.Errorf("spec.platform_spec: %w", err)
		}
	}
	if s, ok := p.(string); ok { // a string inside the wrapper
		plan, _, err := kfp.Load([]byte(s), "", kfp.Options{})
		return plan, err
	}
	if m, ok := p.(map[string]any); ok && !kfp.IsIRDoc(m) { // Skiff, as JSON
		plan, _, err := kfp.Load(inner, "", kfp.Options{})
		return plan, err
	}
	doc, _, err := kfp.ParseValues(p, pl, kfp.Options{})
	if err != nil {
		return nil, err
	}
	plan, _, err := kfp.Compile(doc, kfp.Options{})
	return plan, err
}
