package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "format: table, json or name"}
}

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list, inspect and resume runs in the data dir",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list runs, newest first",
				Flags: []cli.Flag{outputFlag(),
					&cli.StringFlag{Name: "experiment", Usage: "with --server: only this experiment's runs"},
					&cli.StringFlag{Name: "namespace", Usage: "with --server: the namespace (default: the token's)"}},
				Action: func(c *cli.Context) error {
					if cl, err := newClientFrom(c); err != nil || cl != nil {
						if err != nil {
							return err
						}
						return clientRunsList(c, cl)
					}
					n, cl, err := openForRead(c)
					if cl != nil {
						return clientRunsList(c, cl)
					}
					if err != nil {
						return err
					}
					defer n.close()
					runs, err := n.store.ListRuns()
					if err != nil {
						return err
					}
					return printRuns(c.String("output"), runs)
				},
			},
			{
				Name:      "get",
				Usage:     "show one run and its tasks",
				ArgsUsage: "RUN (an id or a unique prefix of one)",
				Flags:     []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("runs get: expected one RUN id")
					}
					if cl, err := newClientFrom(c); err != nil || cl != nil {
						if err != nil {
							return err
						}
						return clientRunsGet(c, cl, c.Args().First())
					}
					n, cl, err := openForRead(c)
					if cl != nil {
						return clientRunsGet(c, cl, c.Args().First())
					}
					if err != nil {
						return err
					}
					defer n.close()
					r, err := findRun(n, c.Args().First())
					if err != nil {
						return err
					}
					return printRunResult(c, n, r.ID, c.String("output"))
				},
			},
			{
				Name:      "wait",
				Usage:     "wait for a run to end (exit 1 unless it SUCCEEDED)",
				ArgsUsage: "RUN",
				Flags:     []cli.Flag{outputFlag()},
				Action:    serverRunAction("wait", clientRunsWait),
			},
			{
				Name:      "cancel",
				Usage:     "cancel a run: its steps are stopped and it ends CANCELED",
				ArgsUsage: "RUN",
				Action:    serverRunAction("cancel", clientRunsCancel),
			},
			{
				Name:      "retry",
				Usage:     "restart a FAILED or CANCELED run in place: its failed, skipped and canceled tasks run again",
				ArgsUsage: "RUN",
				Description: `Retry restarts a run that ended FAILED or CANCELED, as KFP's retry does: the
tasks that succeeded keep their outputs and do not run again; the failed,
skipped and canceled ones go back to PENDING and run with their next attempt
number (earlier attempts and their logs are kept). With --server the server
runs it and the command returns at once (follow it with 'skiff runs wait');
on the embedded node it follows the run to its end and exits 0 only if it
SUCCEEDED.`,
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
such. Exits 0 only if every resumed run SUCCEEDED.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress view: auto, tty, plain, json, none"},
				},
				Action: resumeAction,
			},
		},
	}
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
		return nil
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

func printRuns(format string, runs []store.Run) error {
	switch format {
	case "json":
		out := make([]api.RunSummary, 0, len(runs))
		for _, r := range runs {
			out = append(out, api.Summarize(r, nil))
		}
		return writeJSON(out)
	case "name":
		for _, r := range runs {
			fmt.Println(r.ID)
		}
		return nil
	case "table", "wide":
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN ID\tNAME\tSTATE\tTASKS\tCREATED\tDURATION")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Name, r.State, r.TaskCount,
				r.CreatedAt.Local().Format("2006-01-02 15:04:05"), runDuration(r))
		}
		return tw.Flush()
	}
	return usageError("--output: %q is not one of table, json, name", format)
}

func runDuration(r store.Run) string {
	switch {
	case r.StartedAt.IsZero():
		return "-"
	case r.FinishedAt.IsZero():
		return time.Since(r.StartedAt).Round(time.Second).String() + "…"
	}
	return r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
}

// printRunResult prints a stored run and returns the exit status its state
// calls for.
func printRunResult(c *cli.Context, n *node, runID, format string) error {
	r, err := n.store.GetRun(runID)
	if err != nil {
		return err
	}
	tasks, err := n.store.Tasks(runID)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		if err := writeJSON(api.Summarize(r, tasks)); err != nil {
			return err
		}
	case "name":
		fmt.Println(r.ID)
	case "table", "wide":
		printRunTable(r, tasks)
	default:
		return usageError("--output: %q is not one of table, json, name", format)
	}
	if c.Command.Name == "run" && r.State != spec.RunSucceeded {
		for _, t := range tasks {
			if t.State == spec.TaskFailed {
				fmt.Fprintf(os.Stderr, "skiff: see what %s printed: skiff logs %s %s\n", t.Name, short(r.ID), t.Name)
				break
			}
		}
		return cli.Exit("", exitRunFail)
	}
	return nil
}

func printRunTable(r store.Run, tasks []store.Task) {
	fmt.Printf("Run:      %s\nName:     %s\nState:    %s\nDuration: %s\n", r.ID, r.Name, r.State, runDuration(r))
	if r.Error != "" {
		fmt.Printf("Error:    %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTASK\tSTATE\tATTEMPTS\tDURATION\tDETAIL")
	groups := store.Groups(r)
	for _, t := range store.TreeOrder(r, tasks) {
		d := "-"
		if !t.StartedAt.IsZero() && !t.FinishedAt.IsZero() {
			d = t.FinishedAt.Sub(t.StartedAt).Round(time.Millisecond).String()
		}
		state, detail := t.State.String(), oneLine(t.Error)
		if t.Cached() {
			state, detail = "CACHED", "outputs of "+t.CachedFrom
		}
		attempts := strconv.Itoa(len(t.Attempts))
		if groups[t.Index] {
			attempts = "-" // a group runs its tasks, not a command
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, state, attempts, d, detail)
	}
	tw.Flush()
	if len(r.Outputs) > 0 {
		fmt.Println("\nOutputs:")
		for k, v := range api.Summarize(r, nil).Outputs {
			fmt.Printf("  %s = %s\n", k, v)
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func writeJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// serverRunAction runs fn on the one RUN argument; it needs --server.
func serverRunAction(name string, fn func(*cli.Context, *api.Client, string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 1 {
			return usageError("runs %s: expected one RUN id", name)
		}
		cl, err := newClientFrom(c)
		if err != nil {
			return err
		}
		if cl == nil {
			return embeddedRunAction(c, name, fn)
		}
		return fn(c, cl, c.Args().First())
	}
}

func retryAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("runs retry: expected one RUN id")
	}
	if cl, err := newClientFrom(c); err != nil || cl != nil {
		if err != nil {
			return err
		}
		return clientRunsRetry(c, cl, c.Args().First())
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
