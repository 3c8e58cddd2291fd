package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
	"github.com/skiffml/skiff/store"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a pipeline on the embedded node and follow it to the end",
		ArgsUsage: "FILE | NAME",
		Description: `Runs the pipeline in FILE — Skiff YAML (see docs/pipeline-format.md) or a
pipeline compiled by the kfp SDK (see docs/kfp-compatibility.md) — on the
embedded single node in --data-dir, shows its progress, and exits 0 only if
the run SUCCEEDED (1 if it failed or was canceled, 2 for bad input). NAME,
instead of a file, runs a pipeline uploaded with 'skiff pipeline upload'
(its latest version, or --pipeline-version).

Ctrl-C cancels the run: running steps get SIGTERM, then SIGKILL after a
grace period, and the run ends CANCELED. A second Ctrl-C leaves at once;
'skiff runs resume' picks such a run up later.

With --executor kube, steps run as pods; those that move artifacts or
output parameters need the launcher: --kube-launcher-image (the Skiff
image) and --kube-launcher-listen HOST:PORT, an address of this machine
the pods can reach, where this process serves the launchers' routes alone
(--kube-launcher-api when they reach it by another URL).

Examples:
  skiff run examples/iris/pipeline.yaml
  skiff run examples/iris/pipeline.yaml -p k=7 -p test_fraction=0.25
  skiff run pipeline.yaml -o json > summary.json
  skiff run pipeline.yaml -l team=vision -l stage=dev   # then: skiff runs list -l team=vision
  skiff run nightly --pipeline-version v2     # a pipeline uploaded with 'skiff pipeline upload'
  skiff run pipeline.yaml --executor kube --kubeconfig ~/.kube/config \
    --kube-launcher-image registry.example/skiff:v1 --kube-launcher-listen 10.0.0.5:8090`,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "pipeline parameter `name=value` (repeatable)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "final summary format: table, wide, json, yaml or name (json and yaml go alone to standard output)"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "submit the run, print its id and return; a skiff process in the background runs it (follow it with 'skiff runs wait ID')"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress view: auto, tty (redrawn in place), plain (timestamped lines), json (JSON lines), none"},
			&cli.StringFlag{Name: "executor", Usage: "default executor for tasks that name none: local, docker (needs a Docker engine; steps name an image), kube (needs --kubeconfig; steps run as pods) or sim"},
			&cli.StringFlag{Name: "name", Usage: "display name of the run (default: the pipeline's name)"},
			&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "run label `key=value` (repeatable), for 'skiff runs list -l key=value'"},
			&cli.StringFlag{Name: "pipeline-version", Usage: "with an uploaded pipeline's NAME: the version (`NAME` or id; default the latest)"},
			&cli.StringFlag{Name: "request-id", Usage: "idempotency key: a second run with the same key returns the first run"},
			&cli.BoolFlag{Name: "lenient", Usage: "KFP IR: run without what Skiff does not support (unknown fields, Kubernetes platform settings), with a warning each, instead of rejecting the pipeline"},
			&cli.BoolFlag{Name: "keep-work-dirs", Usage: "keep each execution's work dir and log after its outputs are stored (for debugging; by default they are removed)"},
			&cli.BoolFlag{Name: "no-cache", Usage: "run every task, even those whose results are cached (results are still recorded)"},
			&cli.StringFlag{Name: "experiment", Usage: "the experiment to run in (`ID`, id prefix or name; default: the namespace's Default); needs a server or a skiff process serving the data dir"},
			&cli.DurationFlag{Name: "wait-lock", Value: 10 * time.Minute, Usage: "how long to wait when another skiff process uses the data dir"},
		}, kubeFlags()...),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("run: expected one pipeline FILE, got %d arguments (see skiff run --help)", c.NArg())
	}
	file := c.Args().First()
	out := c.String("output")
	if err := checkOutput(out); err != nil {
		return err
	}
	mode, err := progressMode(c.String("progress"), out)
	if err != nil {
		return err
	}
	jsonNotices = mode == progJSON
	if isPipelineName(file) {
		return runByName(c, file, mode)
	}
	if c.Bool("lenient") && c.String("experiment") != "" {
		return usageError("--lenient and --experiment: a lenient run is compiled and run by this process alone, outside experiments; give one of them")
	}
	if c.Bool("lenient") && len(c.StringSlice("label")) > 0 {
		return usageError("--lenient and --label: a lenient run is compiled and run by this process alone, without labels; give one of them")
	}
	plan, params, err := loadPipeline(file, c.StringSlice("param"), kfp.Options{Lenient: c.Bool("lenient"), Kube: c.String("executor") == "kube"})
	if err != nil {
		return err
	}
	for _, w := range kfp.Unrunnable(plan, c.String("executor")) {
		fmt.Fprintf(os.Stderr, "skiff: %s: warning: %s\n", file, w)
	}
	if c.String("server") == "" { // a server checks against its own nodes
		if err := checkPreflight(c.Context, file, plan, c.String("executor")); err != nil {
			return err
		}
		for _, path := range nodeSelectors(plan, "") {
			fmt.Fprintf(os.Stderr, "skiff: %s: warning: %s.nodeSelector: this machine runs every step itself; node selectors place steps on a cluster's workers (--server)\n", file, path)
		}
	}
	// A server, or the skiff process serving the data dir, takes the run.
	// (--lenient compiles here only: it waits for the data dir instead.)
	if k := servedConn(c); k != nil && (!k.local || !c.Bool("lenient")) {
		return submitRun(c, k, file, plan, params, mode)
	}
	if ex := c.String("executor"); ex == "" || ex == "local" {
		noteImages(plan)
	}
	return runHere(c, file, plan, params, mode)
}

// runHere runs the pipeline with this process's engine, serving the data
// dir to other skiff processes meanwhile (unless one serves it already,
// which then takes the run).
func runHere(c *cli.Context, file string, plan *spec.Plan, params map[string]json.RawMessage, mode progressKind) error {
	prog := newProgress(os.Stderr, mode, plan)
	opts := nodeOptions{defaultExecutor: c.String("executor"), onUpdate: prog.updates}
	n, err := openNode(c, opts)
	// The holder may be starting to serve the data dir, or be a short
	// command: ask it again a few times before waiting for the lock.
	for deadline := time.Now().Add(dialLockWait); errors.Is(err, store.ErrLocked) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if k := servedConn(c); k != nil && !c.Bool("lenient") {
			return submitRun(c, k, file, plan, params, mode)
		}
		n, err = openNode(c, opts)
	}
	if errors.Is(err, store.ErrLocked) {
		opts.wait = c.Duration("wait-lock")
		n, err = openNode(c, opts)
	}
	if err != nil {
		if errors.Is(err, engine.ErrUnknownExecutor) {
			return usageError("%v", err)
		}
		return err
	}
	defer n.close()
	if un, _ := n.store.UnfinishedRuns(); len(un) > 0 {
		notice("skiff: %d unfinished run(s) in %s; 'skiff runs resume' continues them\n", len(un), n.dir)
	}

	runID, err := submitHere(c, n, file, plan, params)
	if err != nil {
		return err
	}
	if c.Bool("detach") {
		return detach(c, n, runID)
	}
	where := "data dir " + n.dir
	if u := runPageURL(c.Context, n.dir, runID); u != "" {
		where += "; " + u
	}
	notice("run %s: %s (%s)\n", runID, plan.Name, where)

	ctx, stop := context.WithCancel(c.Context)
	defer stop()
	wait := n.start(ctx)
	prog.begin(runID)
	final, err := followRun(c.Context, n, runID)
	prog.end()
	if err == nil {
		err = n.waitServed(c.Context, runID)
	}
	stop()
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	r, err := n.store.GetRun(final.ID)
	if err != nil {
		return err
	}
	tasks, err := n.store.Tasks(final.ID)
	if err != nil {
		return err
	}
	return runResult(c, api.Summarize(r, tasks))
}

// submitHere submits the run to this process's node: through its API, as
// every other run is (so experiments and request ids work the same), but
// for --lenient, whose plan only this process can compile.
func submitHere(c *cli.Context, n *node, file string, plan *spec.Plan, params map[string]json.RawMessage) (string, error) {
	if c.Bool("lenient") {
		dir, err := filepath.Abs(filepath.Dir(file))
		if err != nil {
			return "", err
		}
		id, err := n.engine.Submit(c.Context, plan, params, engine.SubmitOptions{
			RequestID: c.String("request-id"), Name: c.String("name"), PipelineDir: dir, Executor: c.String("executor"), NoCache: c.Bool("no-cache"),
		})
		var ve *spec.ValidationError
		if errors.As(err, &ve) || errors.Is(err, engine.ErrUnknownExecutor) {
			return "", usageError("%v", err)
		}
		return id, err
	}
	srv, err := localAPI(n, nil)
	if err != nil {
		return "", err
	}
	cl := api.NewClient("http://"+socketHost, "")
	cl.HTTP = &http.Client{Transport: handlerTransport{srv}}
	run, err := createRun(c, &conn{Client: cl, local: true}, file, params)
	return run.RunID, err
}

// detach leaves the submitted run to a skiff process started in the
// background ('skiff runs resume RUN', which serves the data dir while it
// runs), and prints the run id.
func detach(c *cli.Context, n *node, runID string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(n.dir, "detached.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// The background process waits for this one to let the data dir go.
	args := []string{"--data-dir", n.dir}
	if c.Bool("debug") {
		args = append(args, "--debug")
	}
	cmd := exec.Command(exe, append(args, "runs", "resume", "--progress", "plain", runID)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the background skiff: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	// Let the data dir go, and wait for the background skiff to serve it,
	// so that the next skiff run on it submits there.
	dir := n.dir
	n.close()
	deadline := time.Now().Add(10 * time.Second)
	for socketClient(c.Context, dir) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	notice("run %s: submitted; a background skiff (pid %d, log %s) runs it; 'skiff runs wait %s' follows it\n", runID, pid, logPath, short(runID))
	fmt.Println(runID)
	return nil
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
		notice("\nskiff: canceling the run (Ctrl-C again to leave it running)\n")
		if err := n.engine.Cancel(ctx, runID); err != nil && !errors.Is(err, engine.ErrRunFinished) {
			notice("skiff: cancel: %v\n", err)
		}
		select {
		case <-sigs:
			notice("skiff: leaving run %s unfinished; 'skiff runs resume %s' continues it\n", runID, runID)
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
		notice("skiff: %s: warning: %s\n", file, w)
	}
	if err != nil {
		return nil, nil, usageError("%s: %v", file, err)
	}
	params, err := resolveParams(plan, raw)
	if err != nil {
		return nil, nil, paramsError(file, err)
	}
	return plan, params, nil
}

// paramsError names the pipeline in a parameter error.
func paramsError(pipeline string, err error) error {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	return usageError("%s: %v", pipeline, err)
}

// resolveParams checks the -p name=value parameters against the plan and
// types them.
func resolveParams(plan *spec.Plan, raw []string) (map[string]json.RawMessage, error) {
	given := map[string]string{}
	for _, p := range raw {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, usageError("-p %q: expected name=value", p)
		}
		if _, dup := given[name]; dup {
			return nil, usageError("-p %s: given twice", name)
		}
		given[name] = value
	}
	return plan.ResolveParams(given)
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
		notice("skiff: warning: the local executor runs steps as local processes and ignores their images (%s); --executor docker runs them\n", strings.Join(imgs, ", "))
	}
}
