package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
)

// clientFlags are the global flags that switch commands to a server.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "server", Usage: "talk to the skiff server at `URL` instead of the data dir", EnvVars: []string{"SKIFF_SERVER"}},
		&cli.StringFlag{Name: "token", Usage: "bearer `TOKEN` for --server", EnvVars: []string{"SKIFF_TOKEN"}},
	}
}

// newClientFrom returns a client when --server (or SKIFF_SERVER) is set,
// else nil.
func newClientFrom(c *cli.Context) (*api.Client, error) {
	base := c.String("server")
	if base == "" {
		return nil, nil
	}
	return api.NewClient(base, c.String("token")), nil
}

// pipelineDirRef is how a pipeline names the files beside it.
const pipelineDirRef = "{{pipeline.dir}}"

// createRun submits FILE's pipeline through the API. A local API (the data
// dir's socket, or in-process) is given the pipeline's directory, which it
// may read; a remote server cannot, so the files the pipeline names with
// {{pipeline.dir}} are sent with the run (bundlePipelineFiles).
func createRun(c *cli.Context, k *conn, file string, params map[string]json.RawMessage) (api.Run, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return api.Run{}, usageError("%v", err)
	}
	labels, err := runLabels(c)
	if err != nil {
		return api.Run{}, err
	}
	in := api.Run{DisplayName: c.String("name"), PipelineSpec: mustJSON(string(data)), ExperimentID: c.String("experiment"),
		Executor: c.String("executor"), NoCache: c.Bool("no-cache"), Labels: labels}
	if k.local {
		if in.PipelineFile, err = filepath.Abs(file); err != nil {
			return api.Run{}, err
		}
	} else if err := checkNoSubPipelines(file, data); err != nil {
		return api.Run{}, err
	} else if bytes.Contains(data, []byte(pipelineDirRef)) {
		// A server cannot read this machine's files: send the ones the
		// pipeline names with the run.
		if in.PipelineFiles, err = bundlePipelineFiles(file, data); err != nil {
			return api.Run{}, err
		}
	}
	if len(params) > 0 {
		in.RuntimeConfig = &api.RuntimeConfig{Parameters: params}
	}
	run, err := k.CreateRun(c.Context, in, c.String("request-id"))
	if err != nil {
		return api.Run{}, clientErr(err)
	}
	return run, nil
}

// runLabels parses run's --label flags.
func runLabels(c *cli.Context) (map[string]string, error) {
	labels, err := api.ParseLabels(c.StringSlice("label"))
	if err != nil {
		return nil, usageError("--label %v", err)
	}
	return labels, nil
}

// submitRun runs FILE on a server or on the skiff process serving the data
// dir, and follows it there (unless --detach).
func submitRun(c *cli.Context, k *conn, file string, plan *spec.Plan, params map[string]json.RawMessage, mode progressKind) error {
	if c.Bool("keep-work-dirs") {
		notice("skiff: warning: --keep-work-dirs is for the process that runs the steps: %s keeps its own setting\n", k.where())
	}
	run, err := createRun(c, k, file, params)
	if err != nil {
		return err
	}
	where := k.where()
	if !k.local { // the server serves the web UI at /
		where = strings.TrimSuffix(k.BaseURL, "/") + "/runs/" + run.RunID
	} else if dir, err := filepath.Abs(c.String("data-dir")); err == nil {
		if u := runPageURL(c.Context, dir, run.RunID); u != "" {
			where += "; " + u
		}
	}
	notice("run %s: %s (%s)\n", run.RunID, plan.Name, where)
	if c.Bool("detach") {
		return printDetached(c, k, run.RunID)
	}
	prog := newProgress(os.Stderr, mode, plan)
	prog.begin(run.RunID)
	final, err := followClient(c.Context, k, run.RunID, prog)
	prog.end()
	if errors.Is(err, errServerGone) {
		return takeOver(c, run.RunID, plan, mode)
	}
	if err != nil {
		return err
	}
	return runResult(c, final)
}

// errServerGone: the skiff process serving the data dir stopped answering.
var errServerGone = errors.New("the skiff process serving the data dir stopped")

// takeOver carries on a run whose serving process went away: it waits for
// the data dir, then finishes the run here if it has not ended.
func takeOver(c *cli.Context, runID string, plan *spec.Plan, mode progressKind) error {
	prog := newProgress(os.Stderr, mode, plan)
	n, err := openNode(c, nodeOptions{defaultExecutor: c.String("executor"), onUpdate: prog.updates, wait: c.Duration("wait-lock")})
	if err != nil {
		return err
	}
	defer n.close()
	r, err := n.store.GetRun(runID)
	if err != nil {
		return err
	}
	if !r.State.Final() {
		notice("skiff: the skiff process serving the data dir stopped; run %s continues here\n", short(runID))
		err := n.withEngine(c.Context, func() error {
			if _, err := n.engine.Resume(c.Context, runID); err != nil {
				return err
			}
			prog.begin(runID)
			_, err := followRun(c.Context, n, runID)
			prog.end()
			if err != nil {
				return err
			}
			return n.waitServed(c.Context, runID)
		})
		if err != nil {
			return err
		}
	}
	if r, err = n.store.GetRun(runID); err != nil {
		return err
	}
	tasks, err := n.store.Tasks(runID)
	if err != nil {
		return err
	}
	return runResult(c, api.Summarize(r, tasks))
}

// printDetached prints a submitted run for --detach: its id (or, with -o
// json or yaml, its summary).
func printDetached(c *cli.Context, k *conn, id string) error {
	switch c.String("output") {
	case "json", "yaml":
		r, err := k.RunSummary(c.Context, id)
		if err != nil {
			return clientErr(err)
		}
		return printRun(c.String("output"), r)
	}
	fmt.Println(id)
	return nil
}

// runResult prints a finished run and returns the exit status its state
// calls for.
func runResult(c *cli.Context, r api.RunSummary) error {
	if err := printRun(c.String("output"), r); err != nil {
		return err
	}
	if r.State == "SUCCEEDED" {
		return nil
	}
	for _, t := range r.Tasks {
		if t.State == "FAILED" && !t.Group {
			notice("skiff: see what %s printed: skiff logs %s %s\n", t.Name, short(r.RunID), t.Name)
			break
		}
	}
	return cli.Exit("", exitRunFail)
}

// followClient waits for the run's end, feeding its task changes to the
// progress view. The first SIGINT/SIGTERM cancels the run; a second leaves
// it running where it is.
func followClient(ctx context.Context, k *conn, id string, prog *progress) (api.RunSummary, error) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		notice("\nskiff: canceling the run (Ctrl-C again to leave it running)\n")
		if err := k.TerminateRun(ctx, id); err != nil {
			notice("skiff: cancel: %v\n", clientErr(err))
		}
		select {
		case <-sigs:
			notice("skiff: leaving run %s to %s; 'skiff runs wait %s' follows it\n", id, k.where(), short(id))
			cancel()
		case <-ctx.Done():
		}
	}()
	seen := map[string]string{}
	for {
		r, err := k.RunSummary(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return r, cli.Exit("", exitRunFail)
			}
			if k.local && isDialError(err) {
				return r, errServerGone
			}
			return r, clientErr(err)
		}
		prog.updates(summaryUpdates(r, seen))
		if finalState(r.State) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, cli.Exit("", exitRunFail)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// summaryUpdates turns what changed in a run since seen into the updates
// the progress view shows.
func summaryUpdates(r api.RunSummary, seen map[string]string) []engine.Update {
	var us []engine.Update
	for i, t := range r.Tasks {
		key := t.State + "/" + strconv.Itoa(t.Attempts) + "/" + strconv.FormatBool(t.Cached)
		if seen[t.Name] == key {
			continue
		}
		seen[t.Name] = key
		var ts spec.TaskState
		_ = ts.UnmarshalJSON([]byte(strconv.Quote(t.State)))
		us = append(us, engine.Update{RunID: r.RunID, Task: i, Name: t.Name, TaskState: ts, Attempt: t.Attempts,
			Reason: t.Error, Cached: t.Cached, Time: time.Now()})
	}
	if seen["\x00run"] != r.State {
		seen["\x00run"] = r.State
		var rs spec.RunState
		_ = rs.UnmarshalJSON([]byte(strconv.Quote(r.State)))
		us = append(us, engine.Update{RunID: r.RunID, Task: -1, Name: r.Pipeline, RunState: rs, Time: time.Now()})
	}
	return us
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
