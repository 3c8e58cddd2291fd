package api

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// The shapes below follow KFP's v2beta1 REST API (backend/api/v2beta1):
// snake_case names, enum names as strings, RFC3339 times, int64 as strings
// and empty fields omitted.

// Experiment is a v2beta1 experiment.
type Experiment struct {
	ExperimentID     string `json:"experiment_id,omitempty"`
	DisplayName      string `json:"display_name,omitempty"`
	Description      string `json:"description,omitempty"`
	CreatedAt        string `json:"created_at,omitempty"`
	Namespace        string `json:"namespace,omitempty"`
	StorageState     string `json:"storage_state,omitempty"` // AVAILABLE or ARCHIVED
	LastRunCreatedAt string `json:"last_run_created_at,omitempty"`
}

// ListExperimentsResponse is the body of GET /experiments.
type ListExperimentsResponse struct {
	Experiments   []Experiment `json:"experiments,omitempty"`
	TotalSize     int32        `json:"total_size,omitempty"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

// RuntimeConfig holds a run's parameters.
type RuntimeConfig struct {
	Parameters   map[string]json.RawMessage `json:"parameters,omitempty"`
	PipelineRoot string                     `json:"pipeline_root,omitempty"`
}

// PipelineVersionReference points at a stored pipeline version.
type PipelineVersionReference struct {
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
}

// Status is a google.rpc.Status, as in Run.error.
type Status struct {
	Code    int               `json:"code,omitempty"`
	Message string            `json:"message,omitempty"`
	Details []json.RawMessage `json:"details,omitempty"`
}

// RuntimeStatus is one entry of a state history.
type RuntimeStatus struct {
	UpdateTime string  `json:"update_time,omitempty"`
	State      string  `json:"state,omitempty"`
	Error      *Status `json:"error,omitempty"`
}

// Run is a v2beta1 run. On create, PipelineSpec (a Skiff YAML document as
// a string or an object, or {pipeline_spec, platform_spec}) or
// PipelineVersionReference says what to run.
type Run struct {
	ExperimentID             string                    `json:"experiment_id,omitempty"`
	RunID                    string                    `json:"run_id,omitempty"`
	DisplayName              string                    `json:"display_name,omitempty"`
	StorageState             string                    `json:"storage_state,omitempty"`
	Description              string                    `json:"description,omitempty"`
	PipelineVersionID        string                    `json:"pipeline_version_id,omitempty"`
	PipelineSpec             json.RawMessage           `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *PipelineVersionReference `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            *RuntimeConfig            `json:"runtime_config,omitempty"`
	ServiceAccount           string                    `json:"service_account,omitempty"`
	CreatedAt                string                    `json:"created_at,omitempty"`
	ScheduledAt              string                    `json:"scheduled_at,omitempty"`
	FinishedAt               string                    `json:"finished_at,omitempty"`
	State                    string                    `json:"state,omitempty"`
	Error                    *Status                   `json:"error,omitempty"`
	RunDetails               *RunDetails               `json:"run_details,omitempty"`
	RecurringRunID           string                    `json:"recurring_run_id,omitempty"`
	StateHistory             []RuntimeStatus           `json:"state_history,omitempty"`

	// Skiff's extras on creation. Executor runs the tasks that name none
	// (checked against the namespace's policy); NoCache runs every task
	// even when cached; PipelineFile is the absolute path of the pipeline
	// file on the server's host, whose directory {{pipeline.dir}} names and
	// sub-pipeline files are read from: accepted only from local clients
	// (Config.LocalClients).
	Executor     string `json:"executor,omitempty"`
	NoCache      bool   `json:"no_cache,omitempty"`
	PipelineFile string `json:"pipeline_file,omitempty"`
	// PipelineFiles is a gzip-compressed tar of the files beside the
	// pipeline that it names with {{pipeline.dir}} (what `skiff run
	// --server` sends): the server unpacks it into the namespace's
	// workspace, which {{pipeline.dir}} then names. Bounded by
	// MaxBundleBytes packed and MaxBundleUnpackedBytes unpacked; only
	// regular files and directories with relative names are accepted.
	PipelineFiles []byte `json:"pipeline_files,omitempty"`
	// Labels are key=value pairs to select runs by (label_selector);
	// KFP's run has none.
	Labels map[string]string `json:"labels,omitempty"`
}

// RunDetails holds a run's tasks.
type RunDetails struct {
	PipelineContextID    string       `json:"pipeline_context_id,omitempty"`
	PipelineRunContextID string       `json:"pipeline_run_context_id,omitempty"`
	TaskDetails          []TaskDetail `json:"task_details,omitempty"`
}

// TaskDetail is one task of a run (PipelineTaskDetail).
type TaskDetail struct {
	RunID          string                     `json:"run_id,omitempty"`
	TaskID         string                     `json:"task_id,omitempty"`
	DisplayName    string                     `json:"display_name,omitempty"`
	CreateTime     string                     `json:"create_time,omitempty"`
	StartTime      string                     `json:"start_time,omitempty"`
	EndTime        string                     `json:"end_time,omitempty"`
	State          string                     `json:"state,omitempty"`
	ExecutionID    string                     `json:"execution_id,omitempty"`
	Error          *Status                    `json:"error,omitempty"`
	Outputs        map[string]json.RawMessage `json:"outputs,omitempty"`
	StateHistory   []RuntimeStatus            `json:"state_history,omitempty"`
	ChildTasks     []json.RawMessage          `json:"child_tasks,omitempty"`
	ExecutorDetail *ExecutorDetail            `json:"executor_detail,omitempty"`
	// WaitingReason (Skiff's): why the RUNNING task's execution has not
	// started yet, as its executor said ("Unschedulable: 0/3 nodes are
	// available: 3 Insufficient nvidia.com/gpu.").
	WaitingReason string `json:"waiting_reason,omitempty"`
}

// ExecutorDetail is Skiff's account of a task's attempts.
type ExecutorDetail struct {
	Executor string `json:"executor,omitempty"`
	Attempts string `json:"attempts,omitempty"` // int64 as a string
}

// ListRunsResponse is the body of GET /runs.
type ListRunsResponse struct {
	Runs          []Run  `json:"runs,omitempty"`
	TotalSize     int32  `json:"total_size,omitempty"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Healthz is the body of GET /apis/v2beta1/healthz.
type Healthz struct {
	CommitSHA string `json:"commit_sha,omitempty"`
	TagName   string `json:"tag_name,omitempty"`
	MultiUser bool   `json:"multi_user"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func storageState(archived bool) string {
	if archived {
		return "ARCHIVED"
	}
	return "AVAILABLE"
}

func experimentOut(e store.Experiment) Experiment {
	return Experiment{
		ExperimentID: e.ID, DisplayName: e.Name, Description: e.Description,
		CreatedAt: rfc3339(e.CreatedAt), Namespace: e.Namespace, StorageState: storageState(e.Archived),
	}
}

// runOut converts a stored run; with tasks it fills run_details.
func runOut(r store.Run, meta store.RunMeta, tasks []store.Task, withDetails bool) Run {
	out := Run{
		ExperimentID: r.ExperimentID, RunID: r.ID, DisplayName: r.Name, StorageState: storageState(r.Archived),
		Description: meta.Description, PipelineSpec: meta.PipelineSpec, CreatedAt: rfc3339(r.CreatedAt),
		ScheduledAt: rfc3339(r.CreatedAt), FinishedAt: rfc3339(r.FinishedAt), State: r.State.String(),
		RecurringRunID: meta.RecurringRunID, Labels: meta.Labels,
	}
	if meta.PipelineVersionID != "" {
		out.PipelineVersionReference = &PipelineVersionReference{PipelineID: meta.PipelineID, PipelineVersionID: meta.PipelineVersionID}
		out.PipelineVersionID = meta.PipelineVersionID
	}
	if len(r.Params) > 0 {
		out.RuntimeConfig = &RuntimeConfig{Parameters: r.Params}
	}
	if r.Error != "" {
		out.Error = &Status{Code: codeUnknownRunError, Message: r.Error}
	}
	out.StateHistory = runHistory(r)
	if withDetails {
		out.RunDetails = &RunDetails{TaskDetails: make([]TaskDetail, 0, len(tasks))}
		for _, t := range tasks {
			out.RunDetails.TaskDetails = append(out.RunDetails.TaskDetails, taskOut(r, t))
		}
	}
	return out
}

// codeUnknownRunError is google.rpc.Code UNKNOWN, for run and task errors.
const codeUnknownRunError = 2

func runHistory(r store.Run) []RuntimeStatus {
	h := []RuntimeStatus{{UpdateTime: rfc3339(r.CreatedAt), State: spec.RunPending.String()}}
	if !r.StartedAt.IsZero() {
		h = append(h, RuntimeStatus{UpdateTime: rfc3339(r.StartedAt), State: spec.RunRunning.String()})
	}
	if r.State.Final() || r.State == spec.RunCanceling {
		st := RuntimeStatus{UpdateTime: rfc3339(r.FinishedAt), State: r.State.String()}
		if r.Error != "" {
			st.Error = &Status{Code: codeUnknownRunError, Message: r.Error}
		}
		h = append(h, st)
	}
	return h
}

func taskOut(r store.Run, t store.Task) TaskDetail {
	d := TaskDetail{
		RunID: r.ID, TaskID: r.ID + "/" + strconv.Itoa(t.Index), DisplayName: t.Name,
		CreateTime: rfc3339(r.CreatedAt), StartTime: rfc3339(t.StartedAt), EndTime: rfc3339(t.FinishedAt),
		State: t.State.String(), Outputs: values(t.Outputs),
	}
	if t.Error != "" {
		d.Error = &Status{Code: codeUnknownRunError, Message: t.Error}
	}
	if n := len(t.Attempts); n > 0 {
		a := t.Attempts[n-1]
		d.ExecutionID = a.ExecutionID
		d.ExecutorDetail = &ExecutorDetail{Executor: a.Executor, Attempts: strconv.Itoa(n)}
	}
	d.WaitingReason = store.WaitingReason(t)
	return d
}
