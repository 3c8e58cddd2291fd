package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list, inspect, wait for, cancel, retry and resume runs",
		Description: `Runs are read from the skiff server (--server), else from the skiff process
serving the data dir (a skiff run, ui or server in progress), else from the
data dir itself: the output is the same in every case. RUN may be a unique
prefix of a run id.`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list runs, newest first",
				Description: `Examples:
  skiff runs list
  skiff runs list --state FAILED --limit 5 -o wide
  skiff runs list --experiment my-exp -o json
  skiff runs list --sort-by "name asc"
  skiff runs list -l team=vision,stage!=dev   # labels given with 'skiff run -l'
  skiff runs list -w`,
				Flags: []cli.Flag{outputFlag(),
					&cli.StringFlag{Name: "experiment", Usage: "only this experiment's runs (`ID`, id prefix or name)"},
					&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "only runs whose labels match `SELECTOR`: k=v, k!=v, k (has k), !k (has not), comma-separated (all must hold)"},
					&cli.StringFlag{Name: "state", Usage: "only runs in this `STATE` (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED; comma-separated)"},
					&cli.IntFlag{Name: "limit", Usage: "at most `N` runs (0: all)"},
					&cli.StringFlag{Name: "sort-by", Value: "created_at desc", Usage: "order: `FIELD` [asc|desc], FIELD one of created_at, finished_at, name, state"},
					&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "after the list, print a line for each run that starts or changes state, until interrupted"},
					&cli.StringFlag{Name: "namespace", Usage: "with --server: the namespace (default: the token's)"}},
				Action: runsListAction,
			},
			{
				Name:      "get",
				Usage:     "show one run and its tasks",
				ArgsUsage: "RUN (an id or a unique prefix of one)",
				Description: `Examples:
  skiff runs get 3f2a
  skiff runs get 3f2a -o yaml`,
				Flags: []cli.Flag{outputFlag()},
				Action: withRun("get", func(c *cli.Context, k *conn, id string) error {
					r, err := k.RunSummary(c.Context, id)
					if err != nil {
						return clientErr(err)
					}
					return printRun(c.String("output"), r)
				}),
			},
			{
				Name:      "wait",
				Usage:     "wait for a run to end and show it (exit 1 unless it SUCCEEDED)",
				ArgsUsage: "RUN",
				Description: `Examples:
  skiff runs wait 3f2a
  skiff runs wait 3f2a -o json > summary.json`,
				Flags:  []cli.Flag{outputFlag()},
				Action: withRun("wait", runsWait),
			},
			{
				Name:      "cancel",
				Usage:     "cancel runs: their steps are stopped and they end CANCELED",
				ArgsUsage: "RUN...",
				Description: `Examples:
  skiff runs cancel 3f2a
  skiff runs cancel $(skiff runs list --state RUNNING -o name)`,
				Action: withRuns("cancel", runsCancel),
			},
			{
				Name:      "delete",
				Usage:     "delete runs and their records (their artifacts stay while cached)",
				ArgsUsage: "RUN...",
				Description: `Examples:
  skiff runs delete 3f2a 9b1c
  skiff runs delete $(skiff runs list --state FAILED -o name)`,
				Action: withRuns("delete", func(c *cli.Context, k *conn, id string) error {
					r, err := k.RunSummary(c.Context, id)
					if err != nil {
						return clientErr(err)
					}
					if !finalState(r.State) {
						return usageError("run %s is %s: cancel it first ('skiff runs cancel %s')", r.RunID, r.State, short(r.RunID))
					}
					if err := k.DeleteRun(c.Context, r.RunID); err != nil {
						return clientErr(err)
					}
					fmt.Fprintf(os.Stderr, "run %s deleted\n", r.RunID)
					return nil
				}),
			},
			compareCommand(),
			archiveCommand(true),
			archiveCommand(false),
			{
				Name:      "retry",
				Usage:     "restart a FAILED or CANCELED run in place: its failed, skipped and canceled tasks run again",
				ArgsUsage: "RUN",
				Description: `Retry restarts a run that ended FAILED or CANCELED, as KFP's retry does: the
tasks that succeeded keep their outputs and do not run again; the failed,
skipped and canceled ones go back to PENDING and run with their next attempt
number (earlier attempts and their logs are kept). With --server, or while
another skiff process serves the data dir, that process runs it and the
command returns at once (follow it with 'skiff runs wait'); else it follows
the run to its end and exits 0 only if it SUCCEEDED.

Example:
  skiff runs retry 3f2a`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress view: auto, tty, plain, json, none"},
				},
				Action: retryAction,
			},
			{
				Name:      "resume",
				Usage:     "continue unfinished runs (all of them, or those named) after a crash",
				ArgsUsage: "[RUN...]",
				Description: `After skiff was killed mid-run, resume picks up every unfinished run in the
data dir (or the runs named) and follows it to the end: finished tasks are
not run again, and tasks that were running get a new attempt, recorded as
such. Exits 0 only if every resumed run SUCCEEDED.

Examples:
  skiff runs resume
  skiff runs resume 3f2a`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress view: auto, tty, plain, json, none"},
				},
				Action: resumeAction,
			},
		},
	}
}

// withRun runs fn on the one RUN argument, over the API.
func withRun(name string, fn func(*cli.Context, *conn, string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 1 {
			return usageError("runs %s: expected one RUN id (see skiff runs %s --help)", name, name)
		}
		if err := checkOutputFlag(c); err != nil {
			return err
		}
		k, err := dial(c)
		if err != nil {
			return err
		}
		defer k.close()
		return fn(c, k, c.Args().First())
	}
}

// withRuns runs fn on each RUN argument, over the API.
func withRuns(name string, fn func(*cli.Context, *conn, string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() == 0 {
			return usageError("runs %s: expected one or more RUN ids", name)
		}
		k, err := dial(c)
		if err != nil {
			return err
		}
		defer k.close()
		var errs []error
		for _, id := range c.Args().Slice() {
			if err := fn(c, k, id); err != nil {
				errs = append(errs, err)
			}
		}
		return joinExit(errs)
	}
}

// joinExit joins errors, keeping the highest exit code.
func joinExit(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	code := exitRunFail
	msgs := make([]string, 0, len(errs))
	for _, err := range errs {
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() > code {
			code = ec.ExitCode()
		}
		msgs = append(msgs, err.Error())
	}
	return cli.Exit(strings.Join(msgs, "\nskiff: "), code)
}

func checkOutputFlag(c *cli.Context) error {
	if !c.IsSet("output") && c.String("output") == "" {
		return nil
	}
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), "output") {
			return checkOutput(c.String("output"))
		}
	}
	return nil
}

func runsListAction(c *cli.Context) error {
	format := c.String("output")
	if err := checkOutput(format); err != nil {
		return err
	}
	var states []string
	for _, s := range strings.Split(c.String("state"), ",") {
		if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
			states = append(states, s)
		}
	}
	if c.Int("limit") < 0 {
		return usageError("--limit: %d is negative", c.Int("limit"))
	}
	if _, err := api.ParseSelector(c.String("selector")); err != nil {
		return usageError("--selector: %v", err)
	}
	if c.Bool("watch") && format != "table" && format != "wide" && format != "name" {
		return usageError("--watch: with -o table, wide or name")
	}
	runs, err := listRunsOnce(c, states)
	if err != nil {
		return err
	}
	if err := printRunList(format, runs); err != nil || !c.Bool("watch") {
		return err
	}
	return watchRuns(c, format, states, runs)
}

// listRunsOnce dials, lists and lets the data dir go (a watch must not
// hold it between looks).
func listRunsOnce(c *cli.Context, states []string) ([]api.RunSummary, error) {
	k, err := dial(c)
	if err != nil {
		return nil, err
	}
	defer k.close()
	return listRuns(c, k, states, c.Int("limit"))
}

// watchInterval is how often runs list --watch looks again.
const watchInterval = time.Second

// watchRuns prints a row (without the header) for each run that appears
// or changes state, as kubectl get -w does.
func watchRuns(c *cli.Context, format string, states []string, runs []api.RunSummary) error {
	seen := map[string]string{}
	for _, r := range runs {
		seen[r.RunID] = r.State
	}
	for {
		select {
		case <-c.Context.Done():
			return nil
		case <-time.After(watchInterval):
		}
		now, err := listRunsOnce(c, states)
		if err != nil {
			return err
		}
		var changed []api.RunSummary
		for i := len(now) - 1; i >= 0; i-- { // oldest first
			if r := now[i]; seen[r.RunID] != r.State {
				seen[r.RunID] = r.State
				changed = append(changed, r)
			}
		}
		if len(changed) > 0 {
			if err := printRunRows(format, changed); err != nil {
				return err
			}
		}
	}
}

// listRuns pages through the runs, newest first, keeping those in states
// (all when empty), at most limit (0: all).
func listRuns(c *cli.Context, k *conn, states []string, limit int) ([]api.RunSummary, error) {
	all := []api.RunSummary{}
	opts := api.ListOptions{PageSize: 200, SortBy: c.String("sort-by"), Namespace: c.String("namespace"), ExperimentID: c.String("experiment"), LabelSelector: c.String("selector")}
	for {
		page, err := k.ListRunSummaries(c.Context, opts)
		if err != nil {
			return nil, clientErr(err)
		}
		for _, r := range page.Runs {
			if len(states) == 0 || slices.Contains(states, r.State) {
				all = append(all, r)
			}
			if limit > 0 && len(all) == limit {
				return all, nil
			}
		}
		if page.NextPageToken == "" {
			return all, nil
		}
		opts.PageToken = page.NextPageToken
	}
}

// runsWait follows a run to its end and prints it.
func runsWait(c *cli.Context, k *conn, id string) error {
	// The skiff process serving the data dir may end while we wait (its
	// runs done, or it died): then ask whoever serves it now, or the
	// data dir itself.
	summary := func(id string) (api.RunSummary, error) {
		r, err := k.RunSummary(c.Context, id)
		if err == nil || !k.local || k.n != nil || !isDialError(err) {
			return r, err
		}
		nk, err := dial(c)
		if err != nil {
			return r, err
		}
		k = nk
		return k.RunSummary(c.Context, id)
	}
	defer func() { k.close() }()
	r, err := summary(id)
	if err != nil {
		return clientErr(err)
	}
	for !finalState(r.State) {
		if k.n != nil {
			return usageError("run %s is %s but no skiff process runs it; 'skiff runs resume %s' continues it", r.RunID, r.State, short(r.RunID))
		}
		select {
		case <-c.Context.Done():
			return cli.Exit("", exitRunFail)
		case <-time.After(300 * time.Millisecond):
		}
		if r, err = summary(r.RunID); err != nil {
			return clientErr(err)
		}
	}
	if err := printRun(c.String("output"), r); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "run %s %s\n", r.RunID, r.State)
	if r.State != "SUCCEEDED" {
		return cli.Exit("", exitRunFail)
	}
	return nil
}

// runsCancel cancels a run. On a data dir no process serves, this process
// carries the cancel out (stops what may linger, cancels the rest).
func runsCancel(c *cli.Context, k *conn, id string) error {
	r, err := k.RunSummary(c.Context, id)
	if err != nil {
		return clientErr(err)
	}
	if finalState(r.State) {
		return usageError("run %s already ended %s", r.RunID, r.State)
	}
	if err := k.TerminateRun(c.Context, r.RunID); err != nil {
		return clientErr(err)
	}
	if k.n == nil {
		fmt.Fprintf(os.Stderr, "run %s: cancel requested\n", r.RunID)
		return nil
	}
	n := k.n
	err = n.withEngine(c.Context, func() error {
		if _, err := n.engine.Resume(c.Context, r.RunID); err != nil {
			return err
		}
		_, err := n.engine.Wait(c.Context, r.RunID)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "run %s CANCELED\n", r.RunID)
	return nil
}

func resumeAction(c *cli.Context) error {
	mode, err := progressMode(c.String("progress"), "table")
	if err != nil {
		return err
	}
	prog := newProgress(os.Stderr, mode, nil)
	n, err := openNode(c, nodeOptions{onUpdate: prog.updates, wait: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer n.close()
	var ids []string
	for _, a := range c.Args().Slice() {
		r, err := findRun(n, a)
		if err != nil {
			return err
		}
		ids = append(ids, r.ID)
	}
	var resumed []string
	err = n.withEngine(c.Context, func() error {
		var err error
		if resumed, err = n.engine.Resume(c.Context, ids...); err != nil {
			return err
		}
		if len(resumed) == 0 {
			return nil
		}
		fmt.Fprintf(os.Stderr, "resuming %d run(s): %s\n", len(resumed), strings.Join(resumed, ", "))
		prog.begin("")
		defer prog.end()
		for _, id := range resumed {
			if _, err := followRun(c.Context, n, id); err != nil {
				return err
			}
		}
		return n.waitServed(c.Context, "")
	})
	if errors.Is(err, engine.ErrRunFinished) {
		return usageError("%v", err)
	}
	if err != nil {
		return err
	}
	if len(resumed) == 0 {
		fmt.Fprintln(os.Stderr, "skiff: no unfinished runs")
		return nil
	}
	failed := 0
	for _, id := range resumed {
		r, err := n.store.GetRun(id)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "run %s %s\n", r.ID, r.State)
		if r.State != spec.RunSucceeded {
			failed++
		}
	}
	if failed > 0 {
		return cli.Exit("", exitRunFail)
	}
	return nil
}

func findRun(n *node, idOrPrefix string) (store.Run, error) {
	r, err := n.store.FindRun(idOrPrefix)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r, usageError("run %q: no such run in %s", idOrPrefix, n.dir)
	case errors.Is(err, store.ErrAmbiguous):
		return r, usageError("run %q: prefix matches several runs; give more of the id", idOrPrefix)
	}
	return r, err
}

func retryAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("runs retry: expected one RUN id")
	}
	if k := servedConn(c); k != nil {
		r, err := k.RunSummary(c.Context, c.Args().First())
		if err != nil {
			return clientErr(err)
		}
		if err := k.RetryRun(c.Context, r.RunID); err != nil {
			return clientErr(err)
		}
		fmt.Fprintf(os.Stderr, "run %s: retrying (follow it with 'skiff runs wait %s')\n", r.RunID, short(r.RunID))
		return nil
	}
	mode, err := progressMode(c.String("progress"), "table")
	if err != nil {
		return err
	}
	prog := newProgress(os.Stderr, mode, nil)
	n, err := openNode(c, nodeOptions{onUpdate: prog.updates, wait: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer n.close()
	r, err := findRun(n, c.Args().First())
	if err != nil {
		return err
	}
	err = n.withEngine(c.Context, func() error {
		if err := n.engine.Retry(c.Context, r.ID); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "retrying run %s\n", r.ID)
		prog.begin("")
		defer prog.end()
		_, err := followRun(c.Context, n, r.ID)
		return err
	})
	if errors.Is(err, engine.ErrNotRetryable) {
		return usageError("%v", err)
	}
	if err != nil {
		return err
	}
	final, err := n.store.GetRun(r.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "run %s %s\n", final.ID, final.State)
	if final.State != spec.RunSucceeded {
		return cli.Exit("", exitRunFail)
	}
	return nil
}
