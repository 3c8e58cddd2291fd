package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// RunSummary is a run as `skiff run -o json` and `skiff runs get -o json`
// print it. Field names are snake_case, as KFP's API writes them.
type RunSummary struct {
	RunID        string                     `json:"run_id"`
	Name         string                     `json:"display_name"`
	Pipeline     string                     `json:"pipeline"`
	State        string                     `json:"state"`
	Error        string                     `json:"error,omitempty"`
	ExperimentID string                     `json:"experiment_id,omitempty"`
	TaskCount    int                        `json:"task_count"`
	CreatedAt    string                     `json:"created_at"`
	StartedAt    string                     `json:"started_at,omitempty"`
	FinishedAt   string                     `json:"finished_at,omitempty"`
	DurationSecs float64                    `json:"duration_seconds,omitempty"`
	Parameters   map[string]json.RawMessage `json:"parameters,omitempty"`
	Tasks        []TaskSummary              `json:"tasks"`
	Outputs      map[string]json.RawMessage `json:"outputs,omitempty"`
	Labels       map[string]string          `json:"labels,omitempty"`
}

// TaskSummary is one task of a RunSummary.
type TaskSummary struct {
	Name         string                     `json:"name"`
	State        string                     `json:"state"`
	Attempts     int                        `json:"attempts"`
	Cached       bool                       `json:"cached"`
	Group        bool                       `json:"group,omitempty"` // a loop, sub-pipeline or condition branch: runs its tasks
	CachedFrom   string                     `json:"cached_from,omitempty"`
	Error        string                     `json:"error,omitempty"`
	StartedAt    string                     `json:"started_at,omitempty"`
	FinishedAt   string                     `json:"finished_at,omitempty"`
	DurationSecs float64                    `json:"duration_seconds,omitempty"`
	Outputs      map[string]json.RawMessage `json:"outputs,omitempty"`
	// WaitingReason: why the RUNNING task's execution has not started
	// yet, as its executor said.
	WaitingReason string `json:"waiting_reason,omitempty"`
}

// Summarize builds the summary of a stored run and its tasks.
func Summarize(r store.Run, tasks []store.Task) RunSummary {
	s := RunSummary{
		RunID: r.ID, Name: r.Name, Pipeline: r.PipelineName, State: r.State.String(), Error: r.Error,
		ExperimentID: r.ExperimentID, TaskCount: r.TaskCount,
		CreatedAt: timeText(r.CreatedAt), StartedAt: timeText(r.StartedAt), FinishedAt: timeText(r.FinishedAt),
		DurationSecs: duration(r.StartedAt, r.FinishedAt), Parameters: r.Params,
		Tasks: make([]TaskSummary, 0, len(tasks)), Outputs: values(r.Outputs),
	}
	groups := store.Groups(r)
	for _, t := range store.TreeOrder(r, tasks) {
		s.Tasks = append(s.Tasks, TaskSummary{
			Name: t.Name, State: t.State.String(), Attempts: len(t.Attempts), Error: t.Error, Group: groups[t.Index],
			Cached: t.Cached(), CachedFrom: t.CachedFrom,
			StartedAt: timeText(t.StartedAt), FinishedAt: timeText(t.FinishedAt),
			DurationSecs: duration(t.StartedAt, t.FinishedAt), Outputs: values(t.Outputs),
			WaitingReason: store.WaitingReason(t),
		})
	}
	return s
}

// values renders outputs: a parameter as its JSON value, an artifact as
// {"digest":..., "size":..., "type":...}.
func values(m map[string]spec.Value) map[string]json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		switch {
		case v.Artifact != nil:
			b, _ := json.Marshal(v.Artifact)
			out[k] = b
		case v.IsArtifactList():
			b, _ := json.Marshal(v.Artifacts)
			if v.Artifacts == nil {
				b = []byte("[]")
			}
			out[k] = b
		default:
			out[k] = v.Param
		}
	}
	return out
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func duration(from, to time.Time) float64 {
	if from.IsZero() || to.IsZero() {
		return 0
	}
	return to.Sub(from).Seconds()
}

// ListRunSummariesResponse is the body of GET /apis/skiff/v1/runs: the
// CLI's view of runs, whatever it talks to.
type ListRunSummariesResponse struct {
	Runs          []RunSummary `json:"runs"`
	TotalSize     int32        `json:"total_size,omitempty"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

// listRunSummaries serves GET /apis/skiff/v1/runs with the parameters of
// GET /apis/v2beta1/runs: summaries without their tasks.
func (s *Server) listRunSummaries(w http.ResponseWriter, r *http.Request, p *principal) error {
	items, total, next, err := s.queryRuns(r, p)
	if err != nil {
		return err
	}
	out := ListRunSummariesResponse{Runs: make([]RunSummary, 0, len(items)), TotalSize: int32(total), NextPageToken: next}
	for _, run := range items {
		sum := Summarize(run, nil)
		sum.Labels = s.runLabels(run)
		out.Runs = append(out.Runs, sum)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getRunSummary serves GET /apis/skiff/v1/runs/{id}: the run (id or unique
// prefix) with its tasks, as `skiff runs get -o json` prints it.
func (s *Server) getRunSummary(w http.ResponseWriter, r *http.Request, p *principal) error {
	run, err := s.visibleRun(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	tasks, err := s.cfg.Store.Tasks(run.ID)
	if err != nil {
		return err
	}
	sum := Summarize(run, tasks)
	sum.Labels = s.runLabels(run)
	writeJSON(w, http.StatusOK, sum)
	return nil
}
