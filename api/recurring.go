package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/store"
)

// Int64String is an int64 written as a JSON string, as KFP's int64 fields
// are; it reads a string or a number.
type Int64String int64

// MarshalJSON writes the value as a string.
func (v Int64String) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatInt(int64(v), 10))
}

// UnmarshalJSON reads "123" or 123.
func (v *Int64String) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("expected an int64 (a number or a string of digits), got %s", b)
	}
	*v = Int64String(n)
	return nil
}

// CronSchedule is a cron trigger: 5 fields, or 6 with seconds first (as
// KFP writes them), or a descriptor such as @hourly; times are UTC unless
// the expression starts with CRON_TZ=.
type CronSchedule struct {
	StartTime string `json:"start_time,omitempty"`
	EndTime   string `json:"end_time,omitempty"`
	Cron      string `json:"cron,omitempty"`
}

// PeriodicSchedule fires every IntervalSecond seconds.
type PeriodicSchedule struct {
	StartTime      string      `json:"start_time,omitempty"`
	EndTime        string      `json:"end_time,omitempty"`
	IntervalSecond Int64String `json:"interval_second,omitempty"`
}

// Trigger holds one of the two schedules.
type Trigger struct {
	CronSchedule     *CronSchedule     `json:"cron_schedule,omitempty"`
	PeriodicSchedule *PeriodicSchedule `json:"periodic_schedule,omitempty"`
}

// RecurringRun is a v2beta1 recurring run.
type RecurringRun struct {
	RecurringRunID           string                    `json:"recurring_run_id,omitempty"`
	DisplayName              string                    `json:"display_name,omitempty"`
	Description              string                    `json:"description,omitempty"`
	PipelineVersionID        string                    `json:"pipeline_version_id,omitempty"`
	PipelineSpec             json.RawMessage           `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *PipelineVersionReference `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            *RuntimeConfig            `json:"runtime_config,omitempty"`
	ServiceAccount           string                    `json:"service_account,omitempty"`
	MaxConcurrency           Int64String               `json:"max_concurrency,omitempty"`
	Trigger                  *Trigger                  `json:"trigger,omitempty"`
	Mode                     string                    `json:"mode,omitempty"` // ENABLE or DISABLE
	CreatedAt                string                    `json:"created_at,omitempty"`
	UpdatedAt                string                    `json:"updated_at,omitempty"`
	Status                   string                    `json:"status,omitempty"` // ENABLED or DISABLED
	Error                    *Status                   `json:"error,omitempty"`
	NoCatchup                bool                      `json:"no_catchup,omitempty"`
	Namespace                string                    `json:"namespace,omitempty"`
	ExperimentID             string                    `json:"experiment_id,omitempty"`
}

// ListRecurringRunsResponse is the body of GET /recurringruns.
type ListRecurringRunsResponse struct {
	RecurringRuns []RecurringRun `json:"recurringRuns,omitempty"`
	TotalSize     int32          `json:"total_size,omitempty"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

// maxConcurrencyLimit is KFP's upper bound on max_concurrency.
const maxConcurrencyLimit = 10

// MaxCatchup bounds the missed firings a recurring run catches up on: when
// more were missed (the server was down), only the latest MaxCatchup run.
const MaxCatchup = 100

// catchupWindow bounds how far back the scheduler looks for missed firings.
const catchupWindow = 7 * 24 * time.Hour

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func init() {
	extraRoutes = append(extraRoutes, func(s *Server) {
		const v2 = "/apis/v2beta1"
		s.handle("POST "+v2+"/recurringruns", RoleEditor, s.createRecurringRun)
		s.handle("GET "+v2+"/recurringruns", RoleViewer, s.listRecurringRuns)
		s.handle("GET "+v2+"/recurringruns/{id}", RoleViewer, s.getRecurringRun)
		s.handle("POST "+v2+"/recurringruns/{action}", RoleEditor, s.recurringRunAction) // {id}:enable, {id}:disable
		s.handle("DELETE "+v2+"/recurringruns/{id}", RoleEditor, s.deleteRecurringRun)
	})
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("%s: %q is not an RFC 3339 time", field, v)
	}
	return t.UTC(), nil
}

// triggerOf checks a trigger and fills rr's schedule from it.
func triggerOf(t *Trigger, rr *store.RecurringRun) error {
	if t == nil || (t.CronSchedule == nil) == (t.PeriodicSchedule == nil) {
		return badRequest("trigger: exactly one of cron_schedule and periodic_schedule is required")
	}
	var start, end string
	if c := t.CronSchedule; c != nil {
		if _, err := cronParser.Parse(c.Cron); err != nil {
			return badRequest("trigger.cron_schedule.cron: %q: %v", c.Cron, err)
		}
		rr.Cron, start, end = c.Cron, c.StartTime, c.EndTime
	} else {
		ps := t.PeriodicSchedule
		if ps.IntervalSecond <= 0 {
			return badRequest("trigger.periodic_schedule.interval_second: must be positive")
		}
		if int64(ps.IntervalSecond) > 100*365*24*3600 {
			return badRequest("trigger.periodic_schedule.interval_second: too large")
		}
		rr.IntervalSeconds, start, end = int64(ps.IntervalSecond), ps.StartTime, ps.EndTime
	}
	var err error
	if rr.StartTime, err = parseTime("trigger.start_time", start); err != nil {
		return err
	}
	if rr.EndTime, err = parseTime("trigger.end_time", end); err != nil {
		return err
	}
	if !rr.StartTime.IsZero() && !rr.EndTime.IsZero() && !rr.EndTime.After(rr.StartTime) {
		return badRequest("trigger: end_time must be after start_time")
	}
	return nil
}

func recurringRunOut(rr store.RecurringRun) RecurringRun {
	out := RecurringRun{
		RecurringRunID: rr.ID, DisplayName: rr.Name, Description: rr.Description, PipelineSpec: rr.PipelineSpec,
		MaxConcurrency: Int64String(rr.MaxConcurrency), CreatedAt: rfc3339(rr.CreatedAt), UpdatedAt: rfc3339(rr.UpdatedAt),
		NoCatchup: rr.NoCatchup, Namespace: rr.Namespace, ExperimentID: rr.ExperimentID,
		Mode: "ENABLE", Status: "ENABLED",
	}
	if !rr.Enabled {
		out.Mode, out.Status = "DISABLE", "DISABLED"
	}
	if rr.PipelineVersionID != "" {
		out.PipelineSpec = nil
		out.PipelineVersionReference = &PipelineVersionReference{PipelineID: rr.PipelineID, PipelineVersionID: rr.PipelineVersionID}
		out.PipelineVersionID = rr.PipelineVersionID
	}
	if len(rr.Params) > 0 {
		out.RuntimeConfig = &RuntimeConfig{Parameters: rr.Params}
	}
	start, end := rfc3339(rr.StartTime), rfc3339(rr.EndTime)
	if rr.Cron != "" {
		out.Trigger = &Trigger{CronSchedule: &CronSchedule{Cron: rr.Cron, StartTime: start, EndTime: end}}
	} else {
		out.Trigger = &Trigger{PeriodicSchedule: &PeriodicSchedule{IntervalSecond: Int64String(rr.IntervalSeconds), StartTime: start, EndTime: end}}
	}
	if rr.LastError != "" {
		out.Error = &Status{Code: codeUnknownRunError, Message: rr.LastError}
	}
	return out
}

func (s *Server) createRecurringRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in RecurringRun
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	now := s.now().UTC()
	rr := store.RecurringRun{ID: newID(), Description: in.Description, NoCatchup: in.NoCatchup, CreatedAt: now, UpdatedAt: now}
	if err := triggerOf(in.Trigger, &rr); err != nil {
		return err
	}
	switch rr.MaxConcurrency = int64(in.MaxConcurrency); {
	case rr.MaxConcurrency == 0:
		rr.MaxConcurrency = 1
	case rr.MaxConcurrency < 0 || rr.MaxConcurrency > maxConcurrencyLimit:
		return badRequest("max_concurrency: must be between 1 and %d", maxConcurrencyLimit)
	}
	switch in.Mode {
	case "", "ENABLE", "MODE_UNSPECIFIED":
		rr.Enabled = true
	case "DISABLE":
	default:
		return badRequest("mode: %q is not ENABLE or DISABLE", in.Mode)
	}
	if in.Status != "" || in.RecurringRunID != "" || in.CreatedAt != "" || in.UpdatedAt != "" {
		return badRequest("recurring_run_id, status, created_at and updated_at are output only")
	}
	// Resolve it as a run would be: the namespace, experiment, pipeline and
	// parameters are checked now, and again at every firing.
	run := Run{ExperimentID: in.ExperimentID, DisplayName: in.DisplayName, Description: in.Description,
		PipelineVersionID: in.PipelineVersionID, PipelineSpec: in.PipelineSpec, PipelineVersionReference: in.PipelineVersionReference,
		RuntimeConfig: in.RuntimeConfig}
	nsParam := in.Namespace
	if nsParam == "" {
		nsParam = r.URL.Query().Get("namespace")
	}
	rc, err := s.resolveRun(r, p, &run, nsParam, "")
	if err != nil {
		return err
	}
	rr.Namespace, rr.ExperimentID, rr.Name = rc.ns, rc.experimentID, rc.name
	rr.PipelineSpec, rr.PipelineID, rr.PipelineVersionID = run.PipelineSpec, rc.meta.PipelineID, rc.meta.PipelineVersionID
	if in.RuntimeConfig != nil {
		rr.Params = in.RuntimeConfig.Parameters
	}
	if err := s.apply(r.Context(), store.PutRecurringRun{Create: &rr, Time: now}); err != nil {
		return err
	}
	got, err := s.cfg.Store.GetRecurringRun(rr.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recurringRunOut(got))
	return nil
}

func (s *Server) visibleRecurringRun(id string, p *principal) (store.RecurringRun, error) {
	rr, err := s.cfg.Store.GetRecurringRun(id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !p.sees(rr.Namespace) {
		return store.RecurringRun{}, notFound("recurring run", id)
	}
	return rr, err
}

func (s *Server) getRecurringRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	rr, err := s.visibleRecurringRun(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recurringRunOut(rr))
	return nil
}

func recurringFields(rr store.RecurringRun) fieldFunc {
	return func(key string) (filterValue, bool) {
		switch key {
		case "recurring_run_id", "id":
			return strField(rr.ID), true
		case "display_name", "name":
			return strField(rr.Name), true
		case "description":
			return strField(rr.Description), true
		case "namespace":
			return strField(rr.Namespace), true
		case "experiment_id":
			return strField(rr.ExperimentID), true
		case "status", "mode":
			out := recurringRunOut(store.RecurringRun{Enabled: rr.Enabled})
			if key == "mode" {
				return strField(out.Mode), true
			}
			return strField(out.Status), true
		case "created_at":
			return timeField(rr.CreatedAt), true
		case "updated_at":
			return timeField(rr.UpdatedAt), true
		}
		return filterValue{}, false
	}
}

func (s *Server) listRecurringRuns(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	ns, err := p.listNamespace(q.Get("namespace"))
	if err != nil {
		return err
	}
	expID := q.Get("experiment_id")
	if expID != "" {
		e, err := s.visibleExperiment(expID, p)
		if err != nil {
			return err
		}
		ns = e.Namespace
	}
	lq, err := parseListQuery(q, "recurringruns\x00"+ns+"\x00"+expID, recurringFields(store.RecurringRun{}), "created_at")
	if err != nil {
		return err
	}
	all, err := s.cfg.Store.ListRecurringRuns(ns)
	if err != nil {
		return err
	}
	if expID != "" {
		kept := all[:0]
		for _, rr := range all {
			if rr.ExperimentID == expID {
				kept = append(kept, rr)
			}
		}
		all = kept
	}
	items, total, next := page(lq, all, recurringFields)
	out := ListRecurringRunsResponse{TotalSize: int32(total), NextPageToken: next}
	for _, rr := range items {
		out.RecurringRuns = append(out.RecurringRuns, recurringRunOut(rr))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) recurringRunAction(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, verb, err := splitAction(r.PathValue("action"))
	if err != nil {
		return err
	}
	rr, err := s.visibleRecurringRun(id, p)
	if err != nil {
		return err
	}
	switch verb {
	case "enable", "disable":
		if err := s.apply(r.Context(), store.PutRecurringRun{ID: rr.ID, Enabled: verb == "enable", Time: s.now().UTC()}); err != nil {
			return err
		}
	default:
		return apiErr(codeNotFound, "unknown recurring run action %q (enable, disable)", verb)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) deleteRecurringRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	rr, err := s.visibleRecurringRun(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := s.apply(r.Context(), store.DeleteRecurringRun{ID: rr.ID}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// dueFirings returns the scheduled times of rr's firings that are due at
// now and not yet recorded, oldest first: at most limit of them (the
// latest), and only the latest one when rr.NoCatchup.
func dueFirings(rr store.RecurringRun, now time.Time, limit int) ([]time.Time, error) {
	if rr.NoCatchup {
		limit = 1
	}
	from := rr.EnabledAt
	if rr.LastFired.After(from) {
		from = rr.LastFired
	}
	if !rr.StartTime.IsZero() && !rr.StartTime.Before(from) {
		from = rr.StartTime.Add(-time.Nanosecond) // a firing at start_time counts
	}
	upper := now
	if !rr.EndTime.IsZero() && rr.EndTime.Before(upper) {
		upper = rr.EndTime
	}
	if w := upper.Add(-catchupWindow); from.Before(w) {
		from = w
	}
	if !upper.After(from) || limit <= 0 {
		return nil, nil
	}
	var out []time.Time
	if rr.IntervalSeconds > 0 {
		iv := time.Duration(rr.IntervalSeconds) * time.Second
		anchor := rr.StartTime
		if anchor.IsZero() {
			anchor = rr.CreatedAt
		}
		first := int64(0)
		if !from.Before(anchor) {
			first = int64(from.Sub(anchor)/iv) + 1
		}
		if upper.Before(anchor) {
			return nil, nil
		}
		last := int64(upper.Sub(anchor) / iv)
		if last-first+1 > int64(limit) {
			first = last - int64(limit) + 1
		}
		for k := first; k <= last; k++ {
			out = append(out, anchor.Add(time.Duration(k)*iv))
		}
		return out, nil
	}
	sched, err := cronParser.Parse(rr.Cron)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", rr.Cron, err)
	}
	for t := sched.Next(from.UTC()); !t.IsZero() && !t.After(upper); t = sched.Next(t) {
		out = append(out, t.UTC())
		if len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// ScheduleRecurring fires the recurring runs that are due at the server's
// clock and returns how many runs it created. Each firing creates its run
// under a request id made of the recurring run's id and the scheduled
// time, then records the firing: a firing attempted twice (a crash between
// the two) creates one run. A recurring run with max_concurrency runs
// unfinished fires no more until one ends; its due firings wait (or, with
// no_catchup, only the latest fires). The scheduler loop (RunScheduler)
// calls it; tests call it directly with an injected clock.
func (s *Server) ScheduleRecurring(ctx context.Context) (int, error) {
	s.schedMu.Lock()
	defer s.schedMu.Unlock()
	all, err := s.cfg.Store.ListRecurringRuns("")
	if err != nil {
		return 0, err
	}
	unfinished, err := s.cfg.Store.UnfinishedRuns()
	if err != nil {
		return 0, err
	}
	now := s.now().UTC()
	fired := 0
	for _, rr := range all {
		if !rr.Enabled {
			continue
		}
		prefix := store.RecurringRequestPrefix(rr)
		var active int64
		for _, run := range unfinished {
			if strings.HasPrefix(run.RequestID, prefix) {
				active++
			}
		}
		slots := rr.MaxConcurrency - active
		due, err := dueFirings(rr, now, MaxCatchup)
		if err != nil {
			s.log.Error("recurring run: bad schedule", "recurring_run", rr.ID, "err", err)
			continue
		}
		for _, t := range due {
			// A firing whose run exists (created before a crash, not yet
			// recorded) is only recorded: it takes no new slot.
			if prev, err := s.cfg.Store.RunByRequestID(store.RecurringRequestID(rr, t)); err == nil {
				if err := s.record(ctx, store.RecordRecurringTrigger{ID: rr.ID, Scheduled: t, RunID: prev.ID}); err != nil {
					return fired, err
				}
				continue
			}
			if slots <= 0 {
				break
			}
			created, err := s.fire(ctx, rr, t)
			if err != nil {
				return fired, err
			}
			if created {
				fired++
				slots--
			}
		}
	}
	return fired, nil
}

// fire creates rr's run for the firing at t (unless it exists) and records
// the firing. It reports whether a run exists for it; an error is returned
// only when the store or engine is unavailable.
func (s *Server) fire(ctx context.Context, rr store.RecurringRun, t time.Time) (bool, error) {
	runID, err := s.fireRun(ctx, rr, t)
	if err != nil && (errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrNotLeader) || errors.Is(err, engine.ErrStopped) || ctx.Err() != nil) {
		return false, err
	}
	rec := store.RecordRecurringTrigger{ID: rr.ID, Scheduled: t, RunID: runID}
	if err != nil {
		rec.Error = fmt.Sprintf("firing at %s: %v", t.Format(time.RFC3339), err)
		s.log.Warn("recurring run: firing failed", "recurring_run", rr.ID, "scheduled", t, "err", err)
	}
	if err := s.record(ctx, rec); err != nil {
		return false, err
	}
	return runID != "", nil
}

// record applies a firing record; a rejection (the firing was recorded
// already) is not an error.
func (s *Server) record(ctx context.Context, rec store.RecordRecurringTrigger) error {
	_, err := s.cfg.Store.Apply(ctx, rec)
	return err
}

func (s *Server) fireRun(ctx context.Context, rr store.RecurringRun, t time.Time) (string, error) {
	reqID := store.RecurringRequestID(rr, t)
	if prev, err := s.cfg.Store.RunByRequestID(reqID); err == nil {
		return prev.ID, nil
	}
	plan, err := parseRunSpec(rr.PipelineSpec)
	if err != nil {
		return "", err
	}
	params, err := plan.ResolveParamValues(rr.Params)
	if err != nil {
		return "", fmt.Errorf("runtime_config: %w", err)
	}
	if err := s.checkExecutors(rr.Namespace, plan, s.cfg.DefaultExecutor); err != nil {
		return "", err
	}
	meta := store.RunMeta{RequestID: reqID, Namespace: rr.Namespace, ExperimentID: rr.ExperimentID, Description: rr.Description,
		PipelineID: rr.PipelineID, PipelineVersionID: rr.PipelineVersionID, RecurringRunID: rr.ID}
	if rr.PipelineVersionID == "" {
		meta.PipelineSpec = rr.PipelineSpec
	}
	// A rejection means an earlier attempt at this firing reserved it.
	if _, err := s.cfg.Store.Apply(ctx, store.ReserveRunMeta{Meta: meta}); err != nil {
		return "", err
	}
	name := rr.Name + "-" + t.UTC().Format("20060102150405")
	id, err := s.cfg.Engine.Submit(ctx, plan, params, engine.SubmitOptions{RequestID: reqID, Name: name, Executor: s.cfg.DefaultExecutor})
	if err != nil {
		return "", err
	}
	s.m.created.Inc()
	return id, nil
}

// RunScheduler calls ScheduleRecurring every interval until ctx ends.
func (s *Server) RunScheduler(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := s.ScheduleRecurring(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("recurring runs: scheduler step failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
