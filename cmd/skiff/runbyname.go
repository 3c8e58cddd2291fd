package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
)

// isPipelineName reports whether run's argument names an uploaded pipeline
// rather than a file: no such file, and no path or extension.
func isPipelineName(arg string) bool {
	if _, err := os.Stat(arg); err == nil {
		return false
	}
	return !strings.ContainsAny(arg, "/\\") && !strings.HasSuffix(arg, ".yaml") && !strings.HasSuffix(arg, ".yml") && !strings.HasSuffix(arg, ".json")
}

// runByName runs an uploaded pipeline (by name or id; its latest version
// unless --pipeline-version) where it lives: on the server, on the skiff
// process serving the data dir, or on this process's engine.
func runByName(c *cli.Context, name string, mode progressKind) error {
	k := servedConn(c)
	var n *node
	prog := newProgress(os.Stderr, mode, nil)
	if k == nil {
		var err error
		// The progress comes from following the run, as with a server.
		if n, err = openNode(c, nodeOptions{defaultExecutor: c.String("executor"), wait: c.Duration("wait-lock")}); err != nil {
			return err
		}
		defer n.close()
		srv, err := localAPI(n, nil)
		if err != nil {
			return err
		}
		cl := api.NewClient("http://"+socketHost, "")
		cl.HTTP = &http.Client{Transport: handlerTransport{srv}}
		k = &conn{Client: cl, local: true, n: n}
	}
	v, plan, err := pipelineVersion(c, k, name)
	if err != nil {
		return err
	}
	params, err := resolveParams(plan, c.StringSlice("param"))
	if err != nil {
		return paramsError(name, err)
	}
	labels, err := runLabels(c)
	if err != nil {
		return err
	}
	in := api.Run{DisplayName: c.String("name"), ExperimentID: c.String("experiment"), Executor: c.String("executor"), NoCache: c.Bool("no-cache"), Labels: labels,
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: v.PipelineID, PipelineVersionID: v.PipelineVersionID}}
	if len(params) > 0 {
		in.RuntimeConfig = &api.RuntimeConfig{Parameters: params}
	}
	run, err := k.CreateRun(c.Context, in, c.String("request-id"))
	if err != nil {
		return clientErr(err)
	}
	notice("run %s: %s version %s (%s)\n", run.RunID, name, v.DisplayName, k.where())
	if c.Bool("detach") {
		if n == nil {
			return printDetached(c, k, run.RunID)
		}
		return detach(c, n, run.RunID)
	}
	if n != nil { // this process runs it
		ctx, stop := context.WithCancel(c.Context)
		wait := n.start(ctx)
		defer func() { stop(); _ = wait() }()
	}
	prog.plan = plan
	prog.begin(run.RunID)
	final, err := followClient(c.Context, k, run.RunID, prog)
	prog.end()
	if err == nil && n != nil {
		err = n.waitServed(c.Context, run.RunID)
	}
	if err != nil {
		return err
	}
	return runResult(c, final)
}

// pipelineVersion finds the pipeline named (or with the id) name and its
// version (--pipeline-version, by name or id; default the latest), and
// compiles it here to check the -p parameters.
func pipelineVersion(c *cli.Context, k *conn, name string) (api.PipelineVersion, *spec.Plan, error) {
	p, err := k.GetPipeline(c.Context, name)
	var ae *api.Error
	if errors.As(err, &ae) && ae.HTTPStatus() == http.StatusNotFound {
		p, err = k.PipelineByName(c.Context, "", name)
	}
	if errors.As(err, &ae) && ae.HTTPStatus() == http.StatusNotFound {
		return api.PipelineVersion{}, nil, usageError("run %s: no such file, nor an uploaded pipeline of that name ('skiff pipeline list' lists them)", name)
	}
	if err != nil {
		return api.PipelineVersion{}, nil, clientErr(err)
	}
	want := c.String("pipeline-version")
	var found *api.PipelineVersion
	opts := api.ListOptions{PageSize: 200, SortBy: "created_at desc"}
	for found == nil {
		page, err := k.ListPipelineVersions(c.Context, p.PipelineID, opts)
		if err != nil {
			return api.PipelineVersion{}, nil, clientErr(err)
		}
		for i, v := range page.PipelineVersions {
			if want == "" || v.PipelineVersionID == want || v.DisplayName == want || v.Name == want {
				found = &page.PipelineVersions[i]
				break
			}
		}
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	if found == nil {
		return api.PipelineVersion{}, nil, usageError("--pipeline-version %q: pipeline %s has no such version", want, name)
	}
	data := []byte(found.PipelineSpec)
	var text string
	if json.Unmarshal(found.PipelineSpec, &text) == nil {
		data = []byte(text)
	}
	if bytes.Contains(data, []byte(pipelineDirRef)) {
		return api.PipelineVersion{}, nil, usageError("pipeline %s version %s reads files beside its file (%s), which an uploaded pipeline has not: run the file itself ('skiff run FILE')", name, found.DisplayName, pipelineDirRef)
	}
	plan, _, err := kfp.Load(data, "", kfp.Options{})
	if err != nil {
		return api.PipelineVersion{}, nil, usageError("pipeline %s version %s: %v", name, found.DisplayName, err)
	}
	return *found, plan, nil
}
