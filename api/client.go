package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to a Skiff server (the CLI's --server mode).
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8888
	Token   string // bearer token; "" sends none
	HTTP    *http.Client
}

// NewClient returns a client for base with token.
func NewClient(base, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{}}
}

func (c *Client) request(ctx context.Context, method, path string, in any, hdr map[string]string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.send(req)
}

// send does req and turns a non-2xx answer into an *Error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	method, path := req.Method, req.URL.Path
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		defer res.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		e := &Error{Status: res.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(data)))
		}
		return nil, e
	}
	return res, nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any, hdr map[string]string) error {
	res, err := c.request(ctx, method, path, in, hdr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	return json.NewDecoder(res.Body).Decode(out)
}

const v2 = "/apis/v2beta1"

// CreateRun submits a run; requestID ("" = none) makes it idempotent.
func (c *Client) CreateRun(ctx context.Context, run Run, requestID string) (Run, error) {
	var out Run
	var hdr map[string]string
	if requestID != "" {
		hdr = map[string]string{RequestIDHeader: requestID}
	}
	return out, c.call(ctx, "POST", v2+"/runs", run, &out, hdr)
}

// GetRun returns a run with its task details.
func (c *Client) GetRun(ctx context.Context, id string) (Run, error) {
	var out Run
	return out, c.call(ctx, "GET", v2+"/runs/"+url.PathEscape(id), nil, &out, nil)
}

// ListOptions are the list parameters.
type ListOptions struct {
	PageSize     int
	PageToken    string
	SortBy       string
	Filter       string
	Namespace    string
	ExperimentID string
	// LabelSelector selects runs by label (k=v,k!=v,k,!k).
	LabelSelector string
}

func (o ListOptions) query() string {
	q := url.Values{}
	if o.PageSize > 0 {
		q.Set("page_size", fmt.Sprint(o.PageSize))
	}
	for k, v := range map[string]string{"page_token": o.PageToken, "sort_by": o.SortBy, "filter": o.Filter, "namespace": o.Namespace, "experiment_id": o.ExperimentID, "label_selector": o.LabelSelector} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ListRuns returns one page of runs.
func (c *Client) ListRuns(ctx context.Context, o ListOptions) (ListRunsResponse, error) {
	var out ListRunsResponse
	return out, c.call(ctx, "GET", v2+"/runs"+o.query(), nil, &out, nil)
}

// TerminateRun cancels a run.
func (c *Client) TerminateRun(ctx context.Context, id string) error {
	return c.call(ctx, "POST", v2+"/runs/"+url.PathEscape(id)+":terminate", nil, nil, nil)
}

// RetryRun restarts a FAILED or CANCELED run in place.
func (c *Client) RetryRun(ctx context.Context, id string) error {
	return c.call(ctx, "POST", v2+"/runs/"+url.PathEscape(id)+":retry", nil, nil, nil)
}

// UploadPipeline uploads a pipeline file as a new pipeline named name (KFP's
// multipart upload); its first version gets the same name.
func (c *Client) UploadPipeline(ctx context.Context, name, description, namespace, filename string, data []byte) (Pipeline, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("uploadfile", filename)
	if err != nil {
		return Pipeline{}, err
	}
	if _, err := fw.Write(data); err != nil {
		return Pipeline{}, err
	}
	if err := mw.Close(); err != nil {
		return Pipeline{}, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"name": name, "description": description, "namespace": namespace} {
		if v != "" {
			q.Set(k, v)
		}
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL+v2+"/pipelines/upload?"+q.Encode(), &body)
	if err != nil {
		return Pipeline{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.send(req)
	if err != nil {
		return Pipeline{}, err
	}
	defer res.Body.Close()
	var out Pipeline
	return out, json.NewDecoder(res.Body).Decode(&out)
}

// ListPipelines returns one page of pipelines.
func (c *Client) ListPipelines(ctx context.Context, o ListOptions) (ListPipelinesResponse, error) {
	var out ListPipelinesResponse
	return out, c.call(ctx, "GET", v2+"/pipelines"+o.query(), nil, &out, nil)
}

// GetPipeline returns a pipeline by id.
func (c *Client) GetPipeline(ctx context.Context, id string) (Pipeline, error) {
	var out Pipeline
	return out, c.call(ctx, "GET", v2+"/pipelines/"+url.PathEscape(id), nil, &out, nil)
}

// PipelineByName returns the namespace's pipeline named name ("" = the
// token's namespace).
func (c *Client) PipelineByName(ctx context.Context, namespace, name string) (Pipeline, error) {
	var out Pipeline
	return out, c.call(ctx, "GET", v2+"/pipelines/names/"+url.PathEscape(name)+ListOptions{Namespace: namespace}.query(), nil, &out, nil)
}

// ListPipelineVersions returns one page of a pipeline's versions.
func (c *Client) ListPipelineVersions(ctx context.Context, pipelineID string, o ListOptions) (ListPipelineVersionsResponse, error) {
	var out ListPipelineVersionsResponse
	return out, c.call(ctx, "GET", v2+"/pipelines/"+url.PathEscape(pipelineID)+"/versions"+o.query(), nil, &out, nil)
}

// CreateExperiment creates an experiment.
func (c *Client) CreateExperiment(ctx context.Context, e Experiment) (Experiment, error) {
	var out Experiment
	return out, c.call(ctx, "POST", v2+"/experiments", e, &out, nil)
}

// ListExperiments returns one page of experiments.
func (c *Client) ListExperiments(ctx context.Context, o ListOptions) (ListExperimentsResponse, error) {
	var out ListExperimentsResponse
	return out, c.call(ctx, "GET", v2+"/experiments"+o.query(), nil, &out, nil)
}

// TaskLogs opens a task's logs (by name or index); follow streams them
// until the execution ends.
func (c *Client) TaskLogs(ctx context.Context, runID, task string, attempt int, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if attempt > 0 {
		q.Set("attempt", fmt.Sprint(attempt))
	}
	if follow {
		q.Set("follow", "true")
	}
	path := "/apis/skiff/v1/runs/" + url.PathEscape(runID) + "/tasks/" + url.PathEscape(task) + "/logs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	res, err := c.request(ctx, "GET", path, nil, nil)
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// NamespacePolicy returns a namespace's policy.
func (c *Client) NamespacePolicy(ctx context.Context, ns string) (NamespacePolicy, error) {
	var out NamespacePolicy
	return out, c.call(ctx, "GET", "/apis/skiff/v1/namespaces/"+url.PathEscape(ns)+"/policy", nil, &out, nil)
}

// SetNamespacePolicy replaces a namespace's allowed executors (admin).
func (c *Client) SetNamespacePolicy(ctx context.Context, ns string, allowed []string) (NamespacePolicy, error) {
	var out NamespacePolicy
	in := NamespacePolicy{AllowedExecutors: allowed}
	if in.AllowedExecutors == nil {
		in.AllowedExecutors = []string{}
	}
	return out, c.call(ctx, "PUT", "/apis/skiff/v1/namespaces/"+url.PathEscape(ns)+"/policy", in, &out, nil)
}

// PutNamespacePolicy replaces a namespace's policy with pol (admin; a nil
// KubeNamespace keeps the stored one).
func (c *Client) PutNamespacePolicy(ctx context.Context, ns string, pol NamespacePolicy) (NamespacePolicy, error) {
	var out NamespacePolicy
	if pol.AllowedExecutors == nil {
		pol.AllowedExecutors = []string{}
	}
	return out, c.call(ctx, "PUT", "/apis/skiff/v1/namespaces/"+url.PathEscape(ns)+"/policy", pol, &out, nil)
}

// Watch streams run changes (all visible runs, or runID's) to fn until ctx
// ends, fn returns false, or the stream breaks.
func (c *Client) Watch(ctx context.Context, runID string, fn func(Event) bool) error {
	path := "/apis/skiff/v1/events"
	if runID != "" {
		path += "?run_id=" + url.QueryEscape(runID)
	}
	res, err := c.request(ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev Event
		if json.Unmarshal([]byte(data), &ev) == nil && !fn(ev) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return sc.Err()
}

// WaitRun polls until the run is final (as kfp's wait_for_run_completion
// does) and returns it.
func (c *Client) WaitRun(ctx context.Context, id string, every time.Duration) (Run, error) {
	for {
		r, err := c.GetRun(ctx, id)
		if err != nil {
			return r, err
		}
		switch r.State {
		case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(every):
		}
	}
}

// ClusterMembers lists the cluster's members as the node asked sees them.
func (c *Client) ClusterMembers(ctx context.Context) (ClusterMembers, error) {
	var out ClusterMembers
	err := c.call(ctx, http.MethodGet, "/apis/skiff/v1/cluster", nil, &out, nil)
	return out, err
}

// ClusterDigest returns the state digest of the node asked (admin).
func (c *Client) ClusterDigest(ctx context.Context) (ClusterDigest, error) {
	var out ClusterDigest
	return out, c.call(ctx, http.MethodGet, "/apis/skiff/v1/cluster/digest", nil, &out, nil)
}

// ClusterRemove removes member id from the cluster (admin).

func (c *Client) ClusterRemove(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/apis/skiff/v1/cluster/members/"+url.PathEscape(id), nil, nil, nil)
}

// ClusterLeave makes the node asked leave the cluster and stop (admin).
func (c *Client) ClusterLeave(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/apis/skiff/v1/cluster/leave", nil, nil, nil)
}

// RunSummary returns a run (by id or unique prefix) with its tasks, as the
// CLI prints it.
func (c *Client) RunSummary(ctx context.Context, id string) (RunSummary, error) {
	var out RunSummary
	return out, c.call(ctx, "GET", "/apis/skiff/v1/runs/"+url.PathEscape(id), nil, &out, nil)
}

// ListRunSummaries returns one page of run summaries (without tasks).
func (c *Client) ListRunSummaries(ctx context.Context, o ListOptions) (ListRunSummariesResponse, error) {
	var out ListRunSummariesResponse
	return out, c.call(ctx, "GET", "/apis/skiff/v1/runs"+o.query(), nil, &out, nil)
}

// Artifact opens an artifact's bytes (decompressed; a directory comes as
// a tar stream).
func (c *Client) Artifact(ctx context.Context, digest string) (io.ReadCloser, error) {
	res, err := c.request(ctx, "GET", "/apis/skiff/v1/artifacts/"+url.PathEscape(digest), nil, nil)
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// DeleteRun deletes a run (by id or unique prefix) and its records.
func (c *Client) DeleteRun(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", v2+"/runs/"+url.PathEscape(id), nil, nil, nil)
}

// ArchiveRun archives (or, with archived false, unarchives) a run.
func (c *Client) ArchiveRun(ctx context.Context, id string, archived bool) error {
	verb := ":archive"
	if !archived {
		verb = ":unarchive"
	}
	return c.call(ctx, "POST", v2+"/runs/"+url.PathEscape(id)+verb, nil, nil, nil)
}

// CreateToken creates a bearer token on the server (admin).
func (c *Client) CreateToken(ctx context.Context, in TokenRequest) (TokenCreated, error) {
	var out TokenCreated
	return out, c.call(ctx, "POST", "/apis/skiff/v1/tokens", in, &out, nil)
}
