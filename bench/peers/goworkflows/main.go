// Command goworkflows is the peer harness of `skiff bench` for
// cschleiden/go-workflows: it runs one DAG shape as activities of one
// workflow on go-workflows' durable SQLite backend, in this process (the
// orchestrator: client, workflow worker and activity worker together), and
// prints one JSON line: {"tasks": N, "wall_s": S}.
//
// It is its own Go module so that Skiff's module never depends on
// go-workflows. Wall time runs from creating the workflow instance to its
// result being read back, as Skiff's runs from submission to the run's
// final state being durable; opening the database is not timed.
//
// Shapes (as in Skiff's bench package):
//
//	chain    N activities, each after the one before
//	fanout   one activity, then N at once
//	lattice  D layers of W activities, each layer after all of the one before
//
// With -proc each activity runs /bin/true; otherwise it returns at once.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/sqlite"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	_ "modernc.org/sqlite" // the driver go-workflows' SQLite backend uses
)

// Shape is the DAG to run, the workflow's input.
type Shape struct {
	Kind string // chain, fanout, lattice
	N    int    // chain, fanout
	W, D int    // lattice
}

// Tasks is the number of activities the shape runs.
func (s Shape) Tasks() int {
	switch s.Kind {
	case "chain":
		return s.N
	case "fanout":
		return s.N + 1
	case "lattice":
		return s.W * s.D
	}
	return 0
}

var proc bool

// Step is the activity: nothing, or /bin/true with -proc.
func Step(ctx context.Context) error {
	if proc {
		return exec.CommandContext(ctx, "/bin/true").Run()
	}
	return nil
}

// DAG runs the shape's activities.
func DAG(ctx workflow.Context, s Shape) error {
	opts := workflow.DefaultActivityOptions
	opts.RetryOptions.MaxAttempts = 1
	layer := func(n int) error {
		fs := make([]workflow.Future[any], n)
		for i := range fs {
			fs[i] = workflow.ExecuteActivity[any](ctx, opts, Step)
		}
		for _, f := range fs {
			if _, err := f.Get(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	switch s.Kind {
	case "chain":
		for i := 0; i < s.N; i++ {
			if err := layer(1); err != nil {
				return err
			}
		}
	case "fanout":
		if err := layer(1); err != nil {
			return err
		}
		return layer(s.N)
	case "lattice":
		for i := 0; i < s.D; i++ {
			if err := layer(s.W); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown shape %q", s.Kind)
	}
	return nil
}

func main() {
	var s Shape
	dir := flag.String("dir", "", "directory for the SQLite database (required)")
	flag.StringVar(&s.Kind, "shape", "", "chain, fanout or lattice")
	flag.IntVar(&s.N, "n", 0, "size of chain and fanout")
	flag.IntVar(&s.W, "w", 0, "lattice width")
	flag.IntVar(&s.D, "d", 0, "lattice depth")
	flag.BoolVar(&proc, "proc", false, "each activity runs /bin/true")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *dir == "" || s.Tasks() < 1 {
		fmt.Fprintln(os.Stderr, "usage: goworkflows -dir DIR -shape chain|fanout|lattice (-n N | -w W -d D) [-proc]")
		os.Exit(2)
	}
	wall, err := run(*dir, s, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goworkflows:", err)
		os.Exit(1)
	}
	mode, sync, err := sqliteSettings(filepath.Join(*dir, "gwf.sqlite"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "goworkflows: read back the SQLite settings:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"tasks": s.Tasks(), "wall_s": wall.Seconds(),
		"sqlite_journal_mode": mode, "sqlite_synchronous": sync})
}

// sqliteSettings reads the database's journal mode (kept in the file) and
// the synchronous setting a connection of the same driver gets by
// default: go-workflows' backend sets journal_mode=WAL and busy_timeout
// on its connection, never synchronous, so its connection has this one
// (busy_timeout, set here too, does not change it).
// synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
func sqliteSettings(path string) (mode, sync string, err error) {
	// The backend's connections may still hold a lock just after the run
	// (its workers stop, the WAL is checkpointed): wait for it.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return "", "", err
	}
	if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		return "", "", err
	}
	return mode, sync, nil
}

func run(dir string, s Shape, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The defaults poll for work every 200 ms and fail a workflow whose
	// history passes 10,000 events: poll every millisecond, and allow the
	// history the largest shapes need.
	b := sqlite.NewSqliteBackend(filepath.Join(dir, "gwf.sqlite"), sqlite.WithBackendOptions(
		backend.WithLogger(quiet),
		backend.WithMaxHistorySize(1<<40),
	))
	defer b.Close()
	opts := worker.DefaultOptions
	opts.WorkflowPollingInterval = time.Millisecond
	opts.ActivityPollingInterval = time.Millisecond
	opts.SingleWorkerMode = true
	o := worker.NewWorkflowOrchestrator(b, &opts)
	if err := o.RegisterWorkflow(DAG); err != nil {
		return 0, err
	}
	if err := o.RegisterActivity(Step); err != nil {
		return 0, err
	}
	wctx, stop := context.WithCancel(ctx)
	if err := o.Start(wctx); err != nil {
		stop()
		return 0, err
	}
	start := time.Now()
	inst, err := o.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: fmt.Sprintf("bench-%d", start.UnixNano())}, DAG, s)
	if err == nil {
		_, err = client.GetWorkflowResult[any](ctx, o.Client, inst, timeout)
	}
	wall := time.Since(start)
	stop()
	_ = o.WaitForCompletion()
	return wall, err
}
