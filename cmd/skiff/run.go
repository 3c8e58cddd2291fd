package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a pipeline on the embedded node and follow it to the end",
		ArgsUsage: "FILE",
		Description: `Runs the pipeline in FILE — Skiff YAML (see docs/pipeline-format.md) or a
pipeline compiled by the kfp SDK (see docs/kfp-compatibility.md) — on the
embedded single node in --data-dir, shows its progress, and exits 0 only if
the run SUCCEEDED (1 if it failed or was cancelled, 2 for bad input).

Ctrl-C cancels the run: running steps get SIGTERM, then SIGKILL after a
grace period, and the run ends CANCELED. A second Ctrl-C leaves at once;
'skiff runs resume' picks such a run up later.

Examples:
  skiff run examples/iris/pipeline.yaml
  skiff run examples/iris/pipeline.yaml -p k=7 -p test_fraction=0.25
  skiff run pipeline.yaml -o json > summary.json`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "pipeline parameter `name=value` (repeatable)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "final summary format: table or json (json goes alone to standard output)"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress view: auto, tty (redrawn in place), plain (timestamped lines), json (JSON lines), none"},
			&cli.StringFlag{Name: "executor", Usage: "default executor for tasks that name none: local, docker (needs a Docker engine; steps name an image) or sim"},
			&cli.StringFlag{Name: "name", Usage: "display name of the run (default: the pipeline's name)"},
			&cli.StringFlag{Name: "request-id", Usage: "idempotency key: a second run with the same key returns the first run"},
			&cli.BoolFlag{Name: "lenient", Usage: "KFP IR: run without what Skiff does not support (unknown fields, Kubernetes platform settings), with a warning each, instead of rejecting the pipeline"},
			&cli.BoolFlag{Name: "keep-work-dirs", Usage: "keep each execution's work dir and log after its outputs are stored (for debugging; by default they are removed)"},
			&cli.BoolFlag{Name: "no-cache", Usage: "run every task, even those whose results are cached (results are still recorded)"},
			&cli.StringFlag{Name: "experiment", Usage: "with --server: the experiment `ID` to run in (default: the namespace's Default)"},
			&cli.DurationFlag{Name: "wait-lock", Value: 10 * time.Minute, Usage: "how long to wait when another skiff process uses the data dir"},
		},
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("run: expected one pipeline FILE, got %d arguments (see skiff run --help)", c.NArg())
	}
	file := c.Args().First()
	out := c.String("output")
	if out != "table" && out != "json" {
		return usageError("--output: %q is not one of table, json", out)
	}
	mode, err := progressMode(c.String("progress"), out)
	if err != nil {
		return err
	}
	if cl, err := newClientFrom(c); err != nil || cl != nil {
		if err != nil {
			return err
		}
		return clientRun(c, cl, file)
	}
	plan, params, err := loadPipeline(file, c.StringSlice("param"), kfp.Options{Lenient: c.Bool("lenient")})
	if err != nil {
		return err
	}
	if ex := c.String("executor"); ex == "" || ex == "local" {
		noteImages(plan)
	}
	for _, w := range kfp.Unrunnable(plan, c.String("executor")) {
		fmt.Fprintf(os.Stderr, "skiff: %s: warning: %s\n", file, w)
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return err
	}

	prog := newProgress(os.Stderr, mode, plan)
	n, err := openNode(c, nodeOptions{defaultExecutor: c.String("executor"), onUpdate: prog.updates, wait: c.Duration("wait-lock")})
	if err != nil {
		if errors.Is(err, engine.ErrUnknownExecutor) {
			return usageError("%v", err)
		}
		return err
	}
	defer n.close()
	if un, _ := n.store.UnfinishedRuns(); len(un) > 0 {
		fmt.Fprintf(os.Stderr, "skiff: %d unfinished run(s) in %s; 'skiff runs resume' continues them\n", len(un), n.dir)
	}

	ctx, stop := context.WithCancel(c.Context)
	defer stop()
	wait := n.start(ctx)

	runID, err := n.engine.Submit(c.Context, plan, params, engine.SubmitOptions{
		RequestID: c.String("request-id"), Name: c.String("name"), PipelineDir: dir, Executor: c.String("executor"), NoCache: c.Bool("no-cache"),
	})
	if err != nil {
		stop()
		_ = wait()
		var ve *spec.ValidationError
		if errors.As(err, &ve) || errors.Is(err, engine.ErrUnknownExecutor) {
			return usageError("%v", err)
		}
		return err
	}
	fmt.Fprintf(os.Stderr, "run %s: %s (data dir %s)\n", runID, plan.Name, n.dir)
	prog.begin(runID)

	final, err := followRun(c.Context, n, runID)
	prog.end()
	stop()
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	return printRunResult(c, n, final.ID, out)
}

// followRun waits for the run's end. The first SIGINT/SIGTERM cancels the
// run; a second returns at once.
func followRun(ctx context.Context, n *node, runID string) (finalRun, error) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	go func() {
		select {
		case <-sigs:
		case <-waitCtx.Done():
			return
		}
		fmt.Fprintln(os.Stderr, "\nskiff: cancelling the run (Ctrl-C again to leave it running)")
		if err := n.engine.Cancel(ctx, runID); err != nil && !errors.Is(err, engine.ErrRunFinished) {
			fmt.Fprintln(os.Stderr, "skiff: cancel:", err)
		}
		select {
		case <-sigs:
			fmt.Fprintf(os.Stderr, "skiff: leaving run %s unfinished; 'skiff runs resume %s' continues it\n", runID, runID)
			cancelWait()
		case <-waitCtx.Done():
		}
	}()
	r, err := n.engine.Wait(waitCtx, runID)
	if err != nil {
		if waitCtx.Err() != nil && ctx.Err() == nil {
			return finalRun{}, cli.Exit("", exitRunFail)
		}
		return finalRun{}, err
	}
	return finalRun{ID: r.ID}, nil
}

type finalRun struct{ ID string }

// loadPipeline reads and validates FILE (Skiff YAML or a compiled KFP
// pipeline) and the -p parameters.
func loadPipeline(file string, raw []string, opts kfp.Options) (*spec.Plan, map[string]json.RawMessage, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	plan, warns, err := kfp.Load(data, file, opts)
	for _, w := range warns {
		fmt.Fprintf(os.Stderr, "skiff: %s: warning: %s\n", file, w)
	}
	if err != nil {
		return nil, nil, usageError("%s: %v", file, err)
	}
	given := map[string]string{}
	for _, p := range raw {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, nil, usageError("-p %q: expected name=value", p)
		}
		if _, dup := given[name]; dup {
			return nil, nil, usageError("-p %s: given twice", name)
		}
		given[name] = value
	}
	params, err := plan.ResolveParams(given)
	if err != nil {
		return nil, nil, usageError("%s: %v", file, err)
	}
	return plan, params, nil
}

// noteImages says, once, that the local executor runs KFP steps as local
// processes and ignores their images.
func noteImages(p *spec.Plan) {
	seen := map[string]bool{}
	var imgs []string
	var walk func(p *spec.Plan)
	walk = func(p *spec.Plan) {
		for i := range p.Tasks {
			t := &p.Tasks[i]
			if t.Body != nil {
				walk(t.Body)
			}
			if t.Protocol == spec.ProtocolKFP && t.Image != "" && t.Executor == "" && !seen[t.Image] {
				seen[t.Image] = true
				imgs = append(imgs, t.Image)
			}
		}
	}
	walk(p)
	if len(imgs) > 0 && p.Executor == "" {
		fmt.Fprintf(os.Stderr, "skiff: warning: the local executor runs steps as local processes and ignores their images (%s); --executor docker runs them\n", strings.Join(imgs, ", "))
	}
}
