package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
	"github.com/skiffml/skiff/store"
)

// RequestIDHeader makes a run creation idempotent: a second request with
// the same id (in the same namespace) returns the first run. The query
// parameter request_id does the same.
const RequestIDHeader = "Idempotency-Key"

// parseRunSpec compiles a run's pipeline_spec: a Skiff YAML document or a
// compiled KFP pipeline (IR), as a string or an object, or
// {pipeline_spec, platform_spec} around one (a platform_spec only with
// KFP IR).
func parseRunSpec(raw json.RawMessage) (*spec.Plan, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, badRequest("pipeline_spec or pipeline_version_reference: one is required")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return compilePipeline(func() (*spec.Plan, error) {
			plan, _, err := kfp.Load([]byte(text), "", kfp.Options{})
			return plan, err
		})
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, badRequest("pipeline_spec: expected a Skiff YAML document or a KFP PipelineSpec, as a string or an object")
	}
	if inner, ok := obj["pipeline_spec"]; ok {
		var platform json.RawMessage
		for k, v := range obj {
			switch {
			case k == "pipeline_spec":
			case k == "platform_spec" && (len(bytes.TrimSpace(v)) == 0 || bytes.Equal(v, []byte("null")) || bytes.Equal(v, []byte("{}"))):
			case k == "platform_spec":
				platform = v
			default:
				return nil, badRequest("pipeline_spec.%s: unknown field (expected pipeline_spec and platform_spec)", k)
			}
		}
		var doc map[string]any
		if platform != nil && (json.Unmarshal(inner, &doc) != nil || !kfp.IsIRDoc(doc)) {
			return nil, badRequest("pipeline_spec.platform_spec: only a KFP PipelineSpec takes a platform_spec")
		}
		if platform != nil {
			return compileKFP(inner, platform)
		}
		return parseRunSpec(inner)
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if kfp.IsIRDoc(doc) {
		return compileKFP(raw, nil)
	}
	return compilePipeline(func() (*spec.Plan, error) { return spec.ParseSkiff(raw) }) // JSON is YAML
}

// parseLocalSpec compiles a pipeline_spec given as the text of the local
// file path (whose sub-pipeline files it reads).
func parseLocalSpec(raw json.RawMessage, path string) (*spec.Plan, error) {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, badRequest("pipeline_spec: with pipeline_file, expected the file's text as a string")
	}
	return compilePipeline(func() (*spec.Plan, error) {
		plan, _, err := kfp.Load([]byte(text), path, kfp.Options{})
		return plan, err
	})
}

// compileKFP compiles a KFP PipelineSpec and optional PlatformSpec given
// as JSON objects.
func compileKFP(pipeline, platform json.RawMessage) (*spec.Plan, error) {
	return compilePipeline(func() (*spec.Plan, error) {
		var p, pl any
		if err := json.Unmarshal(pipeline, &p); err != nil {
			return nil, badRequest("pipeline_spec: %v", err)
		}
		if platform != nil {
			if err := json.Unmarshal(platform, &pl); err != nil {
				return nil, badRequest("platform_spec: %v", err)
			}
		}
		doc, _, err := kfp.ParseValues(p, pl, kfp.Options{})
		if err != nil {
			return nil, err
		}
		plan, _, err := kfp.Compile(doc, kfp.Options{})
		return plan, err
	})
}

// compilePipeline runs a compiler and prefixes its errors with
// pipeline_spec.
func compilePipeline(compile func() (*spec.Plan, error)) (*spec.Plan, error) {
	plan, err := compile()
	if err != nil {
		e := toAPIError(err)
		if !strings.HasPrefix(e.Message, "pipeline_spec") && !strings.HasPrefix(e.Message, "platform_spec") {
			e.Message = "pipeline_spec: " + e.Message
		}
		return nil, e
	}
	return plan, nil
}

// runCreation is what createRun resolved from the request.
type runCreation struct {
	ns, experimentID, requestID, name string
	plan                              *spec.Plan
	params                            map[string]json.RawMessage
	meta                              store.RunMeta
	pipelineDir, executor             string
	noCache                           bool
	// bundle: the pipeline files to keep in the store (StoreWorkspaces).
	bundle []byte
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in Run
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	q := r.URL.Query()
	if in.ExperimentID == "" {
		in.ExperimentID = q.Get("experiment_id")
	}
	reqID := r.Header.Get(RequestIDHeader)
	if reqID == "" {
		reqID = q.Get("request_id")
	}
	rc, err := s.resolveRun(r, p, &in, q.Get("namespace"), reqID)
	if err != nil {
		return err
	}
	run, err := s.submit(r, rc, reqID != "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// resolveRun checks the request and compiles its pipeline.
func (s *Server) resolveRun(r *http.Request, p *principal, in *Run, nsParam, reqID string) (*runCreation, error) {
	rc := &runCreation{}
	if in.ExperimentID != "" {
		e, err := s.visibleExperiment(in.ExperimentID, p)
		if err != nil {
			return nil, err
		}
		nsParam = e.Namespace
	}
	ns, err := p.namespaceFor(nsParam)
	if err != nil {
		return nil, err
	}
	rc.ns = ns
	if in.PipelineFile != "" {
		if !s.cfg.LocalClients {
			return nil, badRequest("pipeline_file: this server does not read its clients' files; put what the pipeline reads from {{pipeline.dir}} into its steps' images (or run it on its own machine)")
		}
		if !filepath.IsAbs(in.PipelineFile) {
			return nil, badRequest("pipeline_file: %q is not an absolute path", in.PipelineFile)
		}
		rc.pipelineDir = filepath.Dir(in.PipelineFile)
	}
	if len(in.PipelineFiles) > 0 && in.PipelineFile != "" {
		return nil, badRequest("pipeline_file and pipeline_files: give one, not both")
	}
	switch {
	case in.PipelineVersionReference != nil || in.PipelineVersionID != "":
		if len(in.PipelineSpec) > 0 {
			return nil, badRequest("pipeline_spec and pipeline_version_reference: give one, not both")
		}
		ref := in.PipelineVersionReference
		if ref == nil {
			ref = &PipelineVersionReference{PipelineVersionID: in.PipelineVersionID}
		}
		specJSON, pid, vid, err := s.versionSpec(ref, p)
		if err != nil {
			return nil, err
		}
		rc.meta.PipelineID, rc.meta.PipelineVersionID = pid, vid
		in.PipelineSpec = specJSON
		rc.plan, err = parseRunSpec(specJSON)
		if err != nil {
			return nil, err
		}
	case in.PipelineFile != "":
		rc.plan, err = parseLocalSpec(in.PipelineSpec, in.PipelineFile)
		if err != nil {
			return nil, err
		}
		rc.meta.PipelineSpec = in.PipelineSpec
	default:
		rc.plan, err = parseRunSpec(in.PipelineSpec)
		if err != nil {
			return nil, err
		}
		rc.meta.PipelineSpec = in.PipelineSpec
	}
	var given map[string]json.RawMessage
	if in.RuntimeConfig != nil {
		given = in.RuntimeConfig.Parameters
	}
	if rc.params, err = rc.plan.ResolveParamValues(given); err != nil {
		e := toAPIError(err)
		e.Message = "runtime_config: " + e.Message
		return nil, e
	}
	rc.noCache, rc.executor = in.NoCache, s.cfg.DefaultExecutor
	if in.Executor != "" {
		rc.executor = in.Executor
	}
	if err := s.checkExecutors(ns, rc.plan, rc.executor); err != nil {
		return nil, err
	}
	if rc.experimentID, err = s.ensureExperiment(r, p, ns, in.ExperimentID); err != nil {
		return nil, err
	}
	rc.name = strings.TrimSpace(in.DisplayName)
	if rc.name == "" {
		rc.name = rc.plan.Name
	}
	if len(reqID) > 200 {
		return nil, badRequest("%s: longer than 200 characters", RequestIDHeader)
	}
	if reqID == "" {
		reqID = newID()
	}
	rc.requestID = ns + "/" + reqID
	rc.meta.RequestID, rc.meta.Namespace, rc.meta.ExperimentID = rc.requestID, ns, rc.experimentID
	rc.meta.Description = in.Description
	if err := checkLabels(in.Labels); err != nil {
		return nil, err
	}
	rc.meta.Labels = in.Labels
	if len(in.PipelineFiles) > 0 { // last: a refused run unpacks nothing
		if rc.pipelineDir, err = s.unpackBundle(ns, in.PipelineFiles); err != nil {
			return nil, err
		}
		if s.cfg.StoreWorkspaces {
			rc.bundle = in.PipelineFiles
			rc.pipelineDir = store.WorkspaceRoot(ns, store.WorkspaceDigest(in.PipelineFiles))
		}
	}
	return rc, nil
}

// submit reserves the run's metadata and hands the plan to the engine.
func (s *Server) submit(r *http.Request, rc *runCreation, clientReqID bool) (Run, error) {
	ctx := r.Context()
	if clientReqID {
		if prev, err := s.cfg.Store.RunByRequestID(rc.requestID); err == nil {
			return s.runView(prev, false)
		}
	}
	res, err := s.cfg.Store.Apply(ctx, store.ReserveRunMeta{Meta: rc.meta})
	if err != nil {
		return Run{}, err
	}
	if len(res.Rejected) > 0 && !clientReqID {
		return Run{}, apiErr(codeInternal, "%s", res.Rejected[0].Reason)
	}
	if rc.bundle != nil {
		// Durable (on a majority, in a cluster) before the run exists.
		res, err := s.cfg.Store.Apply(ctx, store.PutWorkspace{Namespace: rc.ns, Digest: store.WorkspaceDigest(rc.bundle), Data: rc.bundle, Time: s.now().UTC()})
		if err != nil {
			return Run{}, err
		}
		if len(res.Rejected) > 0 {
			return Run{}, apiErr(codeInternal, "pipeline_files: %s", res.Rejected[0].Reason)
		}
	}
	id, err := s.cfg.Engine.Submit(ctx, rc.plan, rc.params, engine.SubmitOptions{
		RequestID: rc.requestID, Name: rc.name, Executor: rc.executor, PipelineDir: rc.pipelineDir, NoCache: rc.noCache,
	})
	if err != nil {
		return Run{}, err
	}
	s.m.created.Inc()
	run, err := s.cfg.Store.GetRun(id)
	if err != nil {
		return Run{}, err
	}
	return s.runView(run, false)
}

// runView renders a run with its metadata (and tasks when withDetails).
func (s *Server) runView(run store.Run, withDetails bool) (Run, error) {
	var meta store.RunMeta
	if run.RequestID != "" {
		if m, err := s.cfg.Store.RunMetaFor(run.RequestID); err == nil {
			meta = m
		}
	}
	var tasks []store.Task
	if withDetails {
		var err error
		if tasks, err = s.cfg.Store.Tasks(run.ID); err != nil {
			return Run{}, err
		}
	}
	return runOut(run, meta, tasks, withDetails), nil
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	run, err := s.visibleRun(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	out, err := s.runView(run, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func runFields(r store.Run) fieldFunc {
	return func(key string) (filterValue, bool) {
		switch key {
		case "run_id", "id":
			return strField(r.ID), true
		case "display_name", "name":
			return strField(r.Name), true
		case "state":
			return strField(r.State.String()), true
		case "experiment_id":
			return strField(r.ExperimentID), true
		case "storage_state":
			return strField(storageState(r.Archived)), true
		case "namespace":
			return strField(store.RunNamespace(r)), true
		case "pipeline_name":
			return strField(r.PipelineName), true
		case "created_at", "scheduled_at":
			return timeField(r.CreatedAt), true
		case "finished_at":
			return timeField(r.FinishedAt), true
		}
		return filterValue{}, false
	}
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, p *principal) error {
	items, total, next, err := s.queryRuns(r, p)
	if err != nil {
		return err
	}
	out := ListRunsResponse{TotalSize: int32(total), NextPageToken: next}
	for _, run := range items {
		v, err := s.runView(run, false)
		if err != nil {
			return err
		}
		out.Runs = append(out.Runs, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// queryRuns returns the page of runs a list request asks for (namespace,
// experiment_id, filter, sort_by, page_size, page_token).
func (s *Server) queryRuns(r *http.Request, p *principal) (items []store.Run, total int, next string, err error) {
	q := r.URL.Query()
	var f store.RunFilter
	if id := q.Get("experiment_id"); id != "" {
		e, err := s.visibleExperiment(id, p)
		if err != nil {
			return nil, 0, "", err
		}
		f.ExperimentID, f.Namespace = e.ID, e.Namespace
	} else {
		ns, err := p.listNamespace(q.Get("namespace"))
		if err != nil {
			return nil, 0, "", err
		}
		f.Namespace = ns
	}
	sel, err := ParseSelector(q.Get("label_selector"))
	if err != nil {
		return nil, 0, "", badRequest("label_selector: %v", err)
	}
	lq, err := parseListQuery(q, "runs\x00"+f.Namespace+"\x00"+f.ExperimentID+"\x00"+sel.String(), runFields(store.Run{}), "created_at desc")
	if err != nil {
		return nil, 0, "", err
	}
	all, err := s.cfg.Store.ListRunsBy(f)
	if err != nil {
		return nil, 0, "", err
	}
	if len(sel) > 0 {
		all = slices.DeleteFunc(all, func(r store.Run) bool { return !sel.Matches(s.runLabels(r)) })
	}
	items, total, next = page(lq, all, runFields)
	return items, total, next, nil
}

func (s *Server) runAction(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, verb, err := splitAction(r.PathValue("action"))
	if err != nil {
		return err
	}
	run, err := s.visibleRun(id, p)
	if err != nil {
		return err
	}
	switch verb {
	case "terminate":
		if err := s.cfg.Engine.Cancel(r.Context(), run.ID); err != nil {
			return err
		}
	case "archive", "unarchive":
		if err := s.apply(r.Context(), store.SetRunArchived{RunID: run.ID, Archived: verb == "archive"}); err != nil {
			return err
		}
	case "retry":
		if err := s.checkRunExecutors(run); err != nil {
			return err
		}
		if err := s.cfg.Engine.Retry(r.Context(), run.ID); err != nil {
			return err
		}
	default:
		return apiErr(codeNotFound, "unknown run action %q (terminate, archive, unarchive, retry)", verb)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request, p *principal) error {
	run, err := s.visibleRun(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := s.apply(r.Context(), store.DeleteRun{RunID: run.ID}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// taskLogs serves GET /apis/skiff/v1/runs/{id}/tasks/{task}/logs
// [?attempt=N][&follow=true]: a task by name or index; plain text.
func (s *Server) taskLogs(w http.ResponseWriter, r *http.Request, p *principal) error {
	run, err := s.visibleRun(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	tasks, err := s.cfg.Store.Tasks(run.ID)
	if err != nil {
		return err
	}
	name := r.PathValue("task")
	for _, t := range tasks {
		if t.Name != name && strconv.Itoa(t.Index) != name {
			continue
		}
		if len(t.Attempts) == 0 {
			return apiErr(codeFailedPrecondition, "task %s has not run (%s)", t.Name, t.State)
		}
		a := t.Attempts[len(t.Attempts)-1]
		if s := r.URL.Query().Get("attempt"); s != "" {
			k, err := strconv.Atoi(s)
			if err != nil || k < 1 || k > len(t.Attempts) {
				return badRequest("attempt: task %s has attempts 1..%d", t.Name, len(t.Attempts))
			}
			a = t.Attempts[k-1]
		}
		if base := s.logHolder(r, a); base != "" {
			return s.proxyLogs(w, r, base)
		}
		rc, err := s.logsOf(r.Context(), a, r.URL.Query().Get("follow") == "true")
		if err != nil {
			return err
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		copyFlushing(w, rc)
		return nil
	}
	return notFound("task", run.ID+"/"+name)
}

func copyFlushing(w http.ResponseWriter, r io.Reader) {
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// downloadArtifact serves GET /apis/skiff/v1/artifacts/{digest}: the blob,
// if a run the caller may see produced it (as an output or as logs).
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request, p *principal) error {
	digest := r.PathValue("digest")
	if s.cfg.Blobs == nil {
		return apiErr(codeUnimplemented, "this server keeps no artifacts")
	}
	ref, err := s.artifactVisible(digest, p)
	if err != nil {
		return err
	}
	rc, err := s.cfg.Blobs.Open(r.Context(), digest)
	if err != nil {
		return notFound("artifact", digest)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if ref.Dir {
		w.Header().Set("Content-Type", "application/x-tar")
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.ReplaceAll(digest, ":", "-")))
	w.WriteHeader(http.StatusOK)
	copyFlushing(w, rc)
	return nil
}

func (s *Server) artifactVisible(digest string, p *principal) (spec.ArtifactRef, error) {
	ns := ""
	if p.namespace != AllNamespaces {
		ns = p.namespace
	}
	runs, err := s.cfg.Store.ListRunsBy(store.RunFilter{Namespace: ns})
	if err != nil {
		return spec.ArtifactRef{}, err
	}
	for _, run := range runs {
		tasks, err := s.cfg.Store.Tasks(run.ID)
		if err != nil {
			continue
		}
		for _, t := range tasks {
			for _, v := range t.Outputs {
				if v.Artifact != nil && v.Artifact.Digest == digest {
					return *v.Artifact, nil
				}
			}
			for _, a := range t.Attempts {
				if a.Logs != nil && a.Logs.Digest == digest {
					return *a.Logs, nil
				}
			}
		}
	}
	return spec.ArtifactRef{}, notFound("artifact", digest)
}

// runLabels returns the labels a run was created with.
func (s *Server) runLabels(r store.Run) map[string]string {
	if r.RequestID == "" {
		return nil
	}
	m, err := s.cfg.Store.RunMetaFor(r.RequestID)
	if err != nil {
		return nil
	}
	return m.Labels
}
