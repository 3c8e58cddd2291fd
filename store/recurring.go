package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RecurringRun creates runs of one pipeline on a schedule (KFP's recurring
// run). Exactly one of Cron and IntervalSeconds is set.
type RecurringRun struct {
	ID           string `json:"id"`
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	ExperimentID string `json:"experiment_id,omitempty"`
	// PipelineSpec is the spec every run gets (as submitted, or the
	// referenced version's); PipelineID and PipelineVersionID name the
	// version it came from, if any.
	PipelineSpec      json.RawMessage            `json:"pipeline_spec"`
	PipelineID        string                     `json:"pipeline_id,omitempty"`
	PipelineVersionID string                     `json:"pipeline_version_id,omitempty"`
	Params            map[string]json.RawMessage `json:"params,omitempty"`
	// Cron is a cron expression (5 fields, or 6 with seconds first);
	// IntervalSeconds a period.
	Cron            string    `json:"cron,omitempty"`
	IntervalSeconds int64     `json:"interval_seconds,omitempty"`
	StartTime       time.Time `json:"start_time,omitzero"`
	EndTime         time.Time `json:"end_time,omitzero"`
	MaxConcurrency  int64     `json:"max_concurrency"`
	NoCatchup       bool      `json:"no_catchup,omitempty"`
	Enabled         bool      `json:"enabled"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
	// EnabledAt is when it was created or last enabled: firings scheduled
	// before it (while disabled) are never caught up.
	EnabledAt time.Time `json:"enabled_at,omitzero"`
	// LastFired is the scheduled time of the latest firing recorded;
	// LastRunID and LastError what that firing did.
	LastFired time.Time `json:"last_fired,omitzero"`
	LastRunID string    `json:"last_run_id,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// RecurringRequestPrefix is the start of the request id of every run the
// recurring run creates; the scheduled time (RFC 3339, UTC) follows it, so
// one firing creates one run however often it is attempted.
func RecurringRequestPrefix(rr RecurringRun) string {
	return rr.Namespace + "/recurring/" + rr.ID + "/"
}

// RecurringRequestID is the request id of rr's run for the firing at t.
func RecurringRequestID(rr RecurringRun, t time.Time) string {
	return RecurringRequestPrefix(rr) + t.UTC().Format(time.RFC3339Nano)
}

// PutRecurringRun creates a recurring run (Create set; rejected if its ID
// exists), or enables or disables one (ID and Enabled set). Enabling sets
// EnabledAt to Time.
type PutRecurringRun struct {
	Create  *RecurringRun `json:"create,omitempty"`
	ID      string        `json:"id,omitempty"`
	Enabled bool          `json:"enabled,omitempty"`
	Time    time.Time     `json:"time"`
}

// DeleteRecurringRun removes a recurring run; the runs it created stay.
type DeleteRecurringRun struct {
	ID string `json:"id"`
}

// RecordRecurringTrigger records that the firing scheduled at Scheduled
// was handled (RunID created, or Error). It is rejected unless Scheduled is
// after the recurring run's LastFired, so a firing is recorded once.
type RecordRecurringTrigger struct {
	ID        string    `json:"id"`
	Scheduled time.Time `json:"scheduled"`
	RunID     string    `json:"run_id,omitempty"`
	Error     string    `json:"error,omitempty"`
}

func (PutRecurringRun) Type() CommandType        { return TypePutRecurringRun }
func (DeleteRecurringRun) Type() CommandType     { return TypeDeleteRecurringRun }
func (RecordRecurringTrigger) Type() CommandType { return TypeRecordRecurringTrigger }

func init() {
	registerJSON(TypePutRecurringRun, "put_recurring_run", 1, applyPutRecurringRun)
	registerJSON(TypeDeleteRecurringRun, "delete_recurring_run", 1, applyDeleteRecurringRun)
	registerJSON(TypeRecordRecurringTrigger, "record_recurring_trigger", 1, applyRecordRecurringTrigger)
}

func applyPutRecurringRun(tx *bolt.Tx, c PutRecurringRun) ([]Rejection, error) {
	if rr := c.Create; rr != nil {
		switch {
		case rr.ID == "" || rr.Namespace == "" || rr.Name == "":
			return reject("create recurring run: id, namespace and name are required"), nil
		case strings.Contains(rr.ID, "/"):
			return reject("create recurring run %q: id contains a slash", rr.ID), nil
		case (rr.Cron == "") == (rr.IntervalSeconds <= 0):
			return reject("create recurring run %q: exactly one of cron and a positive interval is required", rr.ID), nil
		case tx.Bucket(bucketRecurringRuns).Get([]byte(rr.ID)) != nil:
			return reject("create recurring run %q: id already exists", rr.ID), nil
		}
		r := *rr
		if r.Enabled && r.EnabledAt.IsZero() {
			r.EnabledAt = c.Time
		}
		return nil, putJSON(tx, bucketRecurringRuns, r.ID, &r)
	}
	var rr RecurringRun
	if err := getJSON(tx, bucketRecurringRuns, c.ID, &rr); err != nil {
		return reject("recurring run %q: %v", c.ID, err), nil
	}
	if c.Enabled && !rr.Enabled {
		rr.EnabledAt = c.Time
	}
	rr.Enabled, rr.UpdatedAt = c.Enabled, c.Time
	return nil, putJSON(tx, bucketRecurringRuns, rr.ID, &rr)
}

func applyDeleteRecurringRun(tx *bolt.Tx, c DeleteRecurringRun) ([]Rejection, error) {
	if tx.Bucket(bucketRecurringRuns).Get([]byte(c.ID)) == nil {
		return reject("delete recurring run %q: %v", c.ID, ErrNotFound), nil
	}
	return nil, tx.Bucket(bucketRecurringRuns).Delete([]byte(c.ID))
}

func applyRecordRecurringTrigger(tx *bolt.Tx, c RecordRecurringTrigger) ([]Rejection, error) {
	var rr RecurringRun
	if err := getJSON(tx, bucketRecurringRuns, c.ID, &rr); err != nil {
		return reject("recurring run %q: %v", c.ID, err), nil
	}
	if !c.Scheduled.After(rr.LastFired) {
		return reject("recurring run %q: firing %s is not after the last one (%s)", c.ID,
			c.Scheduled.UTC().Format(time.RFC3339), rr.LastFired.UTC().Format(time.RFC3339)), nil
	}
	rr.LastFired, rr.LastRunID, rr.LastError = c.Scheduled, c.RunID, c.Error
	return nil, putJSON(tx, bucketRecurringRuns, rr.ID, &rr)
}

// GetRecurringRun returns one recurring run (ErrNotFound).
func (s *Store) GetRecurringRun(id string) (RecurringRun, error) {
	var rr RecurringRun
	err := s.fsm.view(func(tx *bolt.Tx) error { return getJSON(tx, bucketRecurringRuns, id, &rr) })
	if err != nil {
		return rr, fmt.Errorf("recurring run %q: %w", id, err)
	}
	return rr, nil
}

// ListRecurringRuns returns the recurring runs of ns ("" = all), oldest
// first.
func (s *Store) ListRecurringRuns(ns string) ([]RecurringRun, error) {
	var out []RecurringRun
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecurringRuns).ForEach(func(_, b []byte) error {
			var rr RecurringRun
			if err := json.Unmarshal(b, &rr); err != nil {
				return err
			}
			if ns == "" || rr.Namespace == ns {
				out = append(out, rr)
			}
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b RecurringRun) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}
