package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// Run is one execution of a pipeline plan. Records read from the store are
// fresh copies: callers may change them freely.
type Run struct {
	ID              string                     `json:"id"`
	RequestID       string                     `json:"request_id,omitempty"`
	PipelineName    string                     `json:"pipeline_name,omitempty"`
	Name            string                     `json:"name,omitempty"`
	Plan            json.RawMessage            `json:"plan,omitempty"` // the spec.Plan JSON, opaque here
	Params          map[string]json.RawMessage `json:"params,omitempty"`
	DefaultExecutor string                     `json:"default_executor,omitempty"`
	PipelineDir     string                     `json:"pipeline_dir,omitempty"` // where the pipeline file was read from (placeholders)
	NoCache         bool                       `json:"no_cache,omitempty"`     // the run-level switch: no task of this run reads the cache
	State           spec.RunState              `json:"state"`
	CreatedAt       time.Time                  `json:"created_at,omitzero"`
	StartedAt       time.Time                  `json:"started_at,omitzero"`
	FinishedAt      time.Time                  `json:"finished_at,omitzero"`
	Error           string                     `json:"error,omitempty"`
	CancelRequested bool                       `json:"cancel_requested,omitempty"`
	Outputs         map[string]spec.Value      `json:"outputs,omitempty"`
	TaskCount       int                        `json:"task_count"`
	// Expansions are the groups started so far, in order: each added its
	// tasks at the end of the run's task list (see Transition.Expand).
	Expansions []Expansion `json:"expansions,omitempty"`
	// Namespace and ExperimentID come from the RunMeta reserved under
	// RequestID (server mode); "" for runs of the embedded node.
	Namespace    string `json:"namespace,omitempty"`
	ExperimentID string `json:"experiment_id,omitempty"`
	Archived     bool   `json:"archived,omitempty"`
}

// CreateRun creates Run and one PENDING task per name (task i is named
// TaskNames[i]). It is rejected if the run ID exists, or if Run.RequestID is
// set and a run with that request ID exists (look it up with
// RunByRequestID).
type CreateRun struct {
	Run       Run      `json:"run"`
	TaskNames []string `json:"task_names"`
}

// SetRunState moves a run from From to To. It is rejected if the run is not
// in From or is already final. StartedAt is set when To is RUNNING (if not
// set before), FinishedAt when To is final. Error and Outputs are recorded
// when non-empty.
type SetRunState struct {
	RunID   string                `json:"run_id"`
	From    spec.RunState         `json:"from"`
	To      spec.RunState         `json:"to"`
	Time    time.Time             `json:"time"`
	Error   string                `json:"error,omitempty"`
	Outputs map[string]spec.Value `json:"outputs,omitempty"`
}

// RequestCancel marks a run CancelRequested; a PENDING or RUNNING run becomes
// CANCELING. A final run rejects it. Once requested, no new attempt starts
// and the run cannot go back to PENDING or RUNNING.
type RequestCancel struct {
	RunID string    `json:"run_id"`
	Time  time.Time `json:"time"`
}

func (CreateRun) Type() CommandType     { return TypeCreateRun }
func (SetRunState) Type() CommandType   { return TypeSetRunState }
func (RequestCancel) Type() CommandType { return TypeRequestCancel }

func init() {
	registerJSON(TypeCreateRun, "create_run", 1, applyCreateRun)
	registerJSON(TypeSetRunState, "set_run_state", 1, applySetRunState)
	registerJSON(TypeRequestCancel, "request_cancel", 1, applyRequestCancel)
}

func reject(reason string, args ...any) []Rejection {
	return []Rejection{{Reason: fmt.Sprintf(reason, args...)}}
}

func applyCreateRun(tx *bolt.Tx, c CreateRun) ([]Rejection, error) {
	r := c.Run
	switch {
	case r.ID == "":
		return reject("create run: empty run id"), nil
	case strings.IndexByte(r.ID, 0) >= 0:
		return reject("create run %q: run id contains a NUL byte", r.ID), nil
	case tx.Bucket(bucketRuns).Get([]byte(r.ID)) != nil:
		return reject("create run %q: run id already exists", r.ID), nil
	}
	if r.RequestID != "" {
		if other := tx.Bucket(bucketRunsByRequest).Get([]byte(r.RequestID)); other != nil {
			return reject("create run %q: request id %q already created run %q", r.ID, r.RequestID, other), nil
		}
		if err := tx.Bucket(bucketRunsByRequest).Put([]byte(r.RequestID), []byte(r.ID)); err != nil {
			return nil, err
		}
	}
	r.TaskCount = len(c.TaskNames)
	applyRunMetaTx(tx, &r)
	if len(r.Plan) > 0 {
		if err := tx.Bucket(bucketPlans).Put([]byte(r.ID), r.Plan); err != nil {
			return nil, err
		}
	}
	if err := putRunTx(tx, &r); err != nil {
		return nil, err
	}
	bulkTasks(tx)
	for i, name := range c.TaskNames {
		t := Task{RunID: r.ID, Index: i, Name: name, State: spec.TaskPending}
		if err := putTaskTx(tx, &t); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func applySetRunState(tx *bolt.Tx, c SetRunState) ([]Rejection, error) {
	r, err := getRunTx(tx, c.RunID, false)
	if err != nil {
		return reject("set run state %q: %v", c.RunID, err), nil
	}
	switch {
	case r.State.Final():
		return reject("run %q is already %s", c.RunID, r.State), nil
	case r.State != c.From:
		return reject("stale: run %q is %s, not %s", c.RunID, r.State, c.From), nil
	case r.CancelRequested && (c.To == spec.RunPending || c.To == spec.RunRunning):
		return reject("run %q: cancel requested, cannot go to %s", c.RunID, c.To), nil
	case c.To > spec.RunCanceled:
		return reject("run %q: unknown state %s", c.RunID, c.To), nil
	}
	r.State = c.To
	if c.To == spec.RunRunning && r.StartedAt.IsZero() {
		r.StartedAt = c.Time
	}
	if c.To.Final() {
		r.FinishedAt = c.Time
	}
	if c.Error != "" {
		r.Error = c.Error
	}
	if len(c.Outputs) > 0 {
		r.Outputs = c.Outputs
	}
	return nil, putRunTx(tx, &r)
}

func applyRequestCancel(tx *bolt.Tx, c RequestCancel) ([]Rejection, error) {
	r, err := getRunTx(tx, c.RunID, false)
	if err != nil {
		return reject("cancel run %q: %v", c.RunID, err), nil
	}
	if r.State.Final() {
		return reject("cancel run %q: run is already %s", c.RunID, r.State), nil
	}
	r.CancelRequested = true
	if err := tx.Bucket(bucketRunsCanceled).Put([]byte(r.ID), nil); err != nil {
		return nil, err
	}
	if r.State == spec.RunPending || r.State == spec.RunRunning {
		r.State = spec.RunCanceling
	}
	return nil, putRunTx(tx, &r)
}

// putRunTx writes r (without its plan, which lives in bucketPlans) and keeps
// the active-run index in step.
func putRunTx(tx *bolt.Tx, r *Run) error {
	rec := *r
	rec.Plan = nil
	b, err := json.Marshal(storedRun(&rec))
	if err != nil {
		return fmt.Errorf("encode run %q: %w", r.ID, err)
	}
	id := []byte(r.ID)
	if err := tx.Bucket(bucketRuns).Put(id, b); err != nil {
		return err
	}
	if r.State.Final() {
		return tx.Bucket(bucketRunsActive).Delete(id)
	}
	return tx.Bucket(bucketRunsActive).Put(id, nil)
}

// getRunTx reads one run; withPlan also loads its plan.
func getRunTx(tx *bolt.Tx, id string, withPlan bool) (Run, error) {
	v := tx.Bucket(bucketRuns).Get([]byte(id))
	if v == nil {
		return Run{}, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	return decodeRun(tx, v, withPlan)
}

// runMemo is a run record decoded while applying one entry, with the
// stored bytes it came from.
type runMemo struct {
	id  string
	raw []byte
	run Run
}

// run reads run id (without its plan) for a command that only looks at
// it: an entry of many assignments of one run decodes its record once.
// The memo holds while the record's stored bytes are the very same (a
// write of the record stores new ones); it lives no longer than the entry,
// inside one transaction.
func (ch *Change) run(tx *bolt.Tx, id string) (Run, error) {
	v := ch.get(tx, bucketRuns, []byte(id))
	if v == nil {
		return Run{}, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	if m := ch.memoOf(id, v); m != nil {
		return m.run, nil
	}
	r, err := decodeRun(tx, v, false)
	if err == nil && ch != nil {
		ch.memo = &runMemo{id: id, raw: v, run: r}
	}
	return r, err
}

func (ch *Change) memoOf(id string, v []byte) *runMemo {
	if ch == nil || ch.memo == nil || ch.memo.id != id || !sameBytes(ch.memo.raw, v) {
		return nil
	}
	return ch.memo
}

// sameBytes reports whether a and b are the very same stored bytes (not
// equal ones): what an entry's memos hold by. bbolt keeps the slice a
// write gave it until the transaction ends, and a later write stores new
// bytes, so a memo of a record is good while its read returns the bytes
// the memo was made from.
func sameBytes(a, b []byte) bool { return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0] }

func decodeRun(tx *bolt.Tx, v []byte, withPlan bool) (Run, error) {
	var r Run
	if err := json.Unmarshal(v, storedRun(&r)); err != nil {
		return Run{}, fmt.Errorf("decode run: %w", err)
	}
	if withPlan {
		if p := tx.Bucket(bucketPlans).Get([]byte(r.ID)); p != nil {
			r.Plan = bytes.Clone(p)
		}
	}
	return r, nil
}

// findRunTx returns the run with exactly this ID, else the only run whose ID
// starts with it.
func findRunTx(tx *bolt.Tx, idOrPrefix string) (Run, error) {
	if idOrPrefix == "" {
		return Run{}, fmt.Errorf("find run: empty id: %w", ErrNotFound)
	}
	if v := tx.Bucket(bucketRuns).Get([]byte(idOrPrefix)); v != nil {
		return decodeRun(tx, v, true)
	}
	prefix := []byte(idOrPrefix)
	c := tx.Bucket(bucketRuns).Cursor()
	var found []byte
	var n int
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		n++
		found = v
		if n > 1 {
			return Run{}, fmt.Errorf("find run %q: %w", idOrPrefix, ErrAmbiguous)
		}
	}
	if n == 0 {
		return Run{}, fmt.Errorf("find run %q: %w", idOrPrefix, ErrNotFound)
	}
	return decodeRun(tx, found, true)
}

func runByRequestIDTx(tx *bolt.Tx, reqID string) (Run, error) {
	id := tx.Bucket(bucketRunsByRequest).Get([]byte(reqID))
	if id == nil {
		return Run{}, fmt.Errorf("run with request id %q: %w", reqID, ErrNotFound)
	}
	return getRunTx(tx, string(id), true)
}

// listRunsTx returns every run, or only the active ones.
func listRunsTx(tx *bolt.Tx, activeOnly bool) ([]Run, error) {
	var runs []Run
	if activeOnly {
		runsB := tx.Bucket(bucketRuns)
		err := tx.Bucket(bucketRunsActive).ForEach(func(k, _ []byte) error {
			v := runsB.Get(k)
			if v == nil {
				return fmt.Errorf("active run %q has no record", k)
			}
			r, err := decodeRun(tx, v, true)
			runs = append(runs, r)
			return err
		})
		return runs, err
	}
	err := tx.Bucket(bucketRuns).ForEach(func(_, v []byte) error {
		r, err := decodeRun(tx, v, true)
		runs = append(runs, r)
		return err
	})
	return runs, err
}

// sortRunsNewestFirst orders by CreatedAt descending, then ID ascending.
func sortRunsNewestFirst(runs []Run) {
	slices.SortFunc(runs, func(a, b Run) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
