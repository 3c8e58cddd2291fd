package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/store/blob/gc"
)

// gcFlags are the collection's settings, on `skiff gc` and `skiff server`.
func gcFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "keep-runs-days",
			Usage: "delete finished runs `DAYS` after they finished: DAYS for every namespace, or NAMESPACE=DAYS for one " +
				"(repeatable; the most specific applies; default: keep every run)"},
		&cli.DurationFlag{Name: "gc-grace", Value: gc.DefaultGrace,
			Usage: "never delete a blob written less than `DURATION` ago (outputs of executions still running, uploads in flight)"},
	}
}

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:      "gc",
		Usage:     "delete old finished runs and the artifacts and logs nothing refers to any more",
		ArgsUsage: " ",
		Description: `gc applies run retention (--keep-runs-days), then deletes every blob of the
artifact store (local or S3) that no run, task attempt log or cache entry
refers to. It never deletes what an unfinished run or a cache entry still
needs, nor a blob written less than --gc-grace ago. It works on the data dir
(stop the skiff that holds it first); a server collects on its own schedule
with 'skiff server --gc-interval'.

Examples:
  skiff gc --dry-run
  skiff gc --keep-runs-days 30 --keep-runs-days team-a=7`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be deleted, with sizes; delete nothing"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "`FORMAT`: table or json"},
			&cli.TimestampFlag{Name: "now", Layout: time.RFC3339, Hidden: true, Usage: "collect as if it were `TIME` (tests)"},
		}, gcFlags()...),
		Action: gcAction,
	}
}

// parseKeepRuns parses --keep-runs-days values: "DAYS" (every namespace,
// key "") or "NAMESPACE=DAYS", DAYS a whole number from 0 (keep forever) to
// 36500.
func parseKeepRuns(vals []string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for i, v := range vals {
		ns, days, found := strings.Cut(v, "=")
		if !found {
			ns, days = "", v
		} else if ns == "" || strings.ContainsAny(ns, " \t\r\n/") {
			return nil, fmt.Errorf("--keep-runs-days[%d]: %q: want DAYS or NAMESPACE=DAYS with a namespace name", i, v)
		}
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return nil, fmt.Errorf("--keep-runs-days[%d]: %q: DAYS must be a whole number from 0 to 36500", i, v)
		}
		if _, dup := out[ns]; dup {
			return nil, fmt.Errorf("--keep-runs-days[%d]: %q: namespace %q given twice", i, v, ns)
		}
		out[ns] = time.Duration(n) * 24 * time.Hour
	}
	return out, nil
}

func gcConfig(c *cli.Context, st *store.Store, blobs *blob.Store, log *slog.Logger) (gc.Config, error) {
	cfg := gc.DefaultConfig(st, blobs)
	keep, err := parseKeepRuns(c.StringSlice("keep-runs-days"))
	if err != nil {
		return cfg, usageError("%v", err)
	}
	cfg.KeepRuns, cfg.Grace, cfg.Logger = keep, c.Duration("gc-grace"), log
	if cfg.Grace < 0 {
		return cfg, usageError("--gc-grace: must not be negative, got %s", cfg.Grace)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError("%v", err)
	}
	return cfg, nil
}

func gcAction(c *cli.Context) error {
	out := c.String("output")
	if out != "table" && out != "json" {
		return usageError("--output: %q is not one of table, json", out)
	}
	if c.String("server") != "" {
		return usageError("gc works on a data dir; a server collects on its own with 'skiff server --gc-interval'")
	}
	if _, err := parseKeepRuns(c.StringSlice("keep-runs-days")); err != nil {
		return usageError("%v", err)
	}
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); err != nil {
		return usageError("data dir %s holds no store: %v", dir, err)
	}
	log := logger(c)
	scfg, err := storeConfig(c, dir)
	if err != nil {
		return err
	}
	scfg.Logger = log
	st, err := store.Open(c.Context, scfg)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("data dir %s is in use by another skiff process; stop it first (a server collects with --gc-interval): %w", dir, err)
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	blobs, err := openBlobs(c, dir)
	if err != nil {
		return fmt.Errorf("open blob store: %w", err)
	}
	cfg, err := gcConfig(c, st, blobs, log)
	if err != nil {
		return err
	}
	cfg.DryRun = c.Bool("dry-run")
	if now := c.Timestamp("now"); now != nil {
		cfg.Now = func() time.Time { return *now }
	}
	rep, err := gc.Collect(c.Context, cfg)
	if err != nil {
		return err
	}
	if out == "json" {
		return writeJSON(rep)
	}
	printGCReport(rep, cfg.Grace)
	return nil
}

func printGCReport(rep gc.Report, grace time.Duration) {
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	for _, r := range rep.Runs {
		fmt.Printf("%s run %s (namespace %s, finished %s)\n", verb, r.ID, r.Namespace, r.FinishedAt.Format(time.RFC3339))
	}
	for _, b := range rep.Blobs {
		fmt.Printf("%s blob %s %10s\n", verb, b.Digest, byteSize(b.Size))
	}
	fmt.Printf("%s %d run(s) and %d blob(s), %s, in %s; kept %d referenced blob(s) and %d younger than %s\n",
		verb, len(rep.Runs), len(rep.Blobs), byteSize(rep.BytesFreed), rep.Store, rep.Referenced, rep.Young, grace)
}

// serverGCFlags are gcFlags plus the schedule.
func serverGCFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.DurationFlag{Name: "gc-interval",
			Usage: "collect garbage (see 'skiff gc') every `DURATION` while this node leads; 0: never"},
	}, gcFlags()...)
}

// startServerGC starts the server's collection schedule (--gc-interval) and
// returns its stop. Only the leader collects, after checking that it still
// leads, so the references it reads are the cluster's latest: a follower
// behind the log must not judge which blobs are unreferenced.
func startServerGC(ctx context.Context, c *cli.Context, n *node, repl *cluster.Blobs) (func(), error) {
	every := c.Duration("gc-interval")
	cfg, err := gcConfig(c, n.store, n.blobs, n.log)
	if err != nil || every <= 0 {
		return func() {}, err
	}
	// With replicated blobs each node keeps its own copies: every node
	// collects them (and records what it dropped); run retention stays
	// the leader's.
	local := cfg
	local.KeepRuns = nil
	if repl != nil {
		cfg.Dropped, local.Dropped = repl.Dropped, repl.Dropped
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			run := cfg
			if !n.store.IsLeader() || n.store.VerifyLeader(ctx) != nil {
				if repl == nil {
					continue
				}
				run = local
			}
			if _, err := gc.Collect(ctx, run); err != nil && ctx.Err() == nil {
				n.log.Error("gc", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
