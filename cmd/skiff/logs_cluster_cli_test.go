package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// TestCluster_RunningStepsLogReadFromEveryServer: while a step runs on one
// server's worker, its log is read (and followed) through the API of every
// server: the others proxy to the one that runs it. The step runs with the
// local executor, whose log only its own server can read (docker steps'
// logs would be readable from every server here: they share one Docker
// engine).
func TestCluster_RunningStepsLogReadFromEveryServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dir := t.TempDir()
	procs := startThreeServers(t, dir, "--default-executor", "local", "--worker-heartbeat", "200ms", "--node-ttl", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitLeader(ctx, t, procs[0].url)
	c0 := api.NewClient(procs[0].url, "")
	pollUntil(t, 30*time.Second, "local allowed in namespace default", func() error {
		_, err := c0.SetNamespacePolicy(ctx, "default", []string{"local"})
		return err
	})
	spec := "name: slow\ntasks:\n  - name: talk\n    command: [sh, -c, 'echo first-line; sleep 600']\n"
	var run api.Run
	pollUntil(t, 60*time.Second, "the run created", func() (err error) {
		run, err = c0.CreateRun(ctx, api.Run{DisplayName: "slow", PipelineSpec: mustJSON(spec)}, "slow-1")
		return err
	})
	defer func() { _ = c0.TerminateRun(context.Background(), run.RunID) }()
	for _, p := range procs {
		cl := api.NewClient(p.url, "")
		pollUntil(t, 90*time.Second, p.id+" serves the running step's log", func() error {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			rc, err := cl.TaskLogs(rctx, run.RunID, "talk", 0, false)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			if !strings.Contains(string(b), "first-line") {
				return fmt.Errorf("log so far %q", b)
			}
			return nil
		})
	}
	// Followed through a server: the first line comes while the step runs.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	rc, err := api.NewClient(procs[2].url, "").TaskLogs(rctx, run.RunID, "talk", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(rc, buf, len("first-line"))
	if err != nil || !strings.Contains(string(buf[:n]), "first-line") {
		t.Fatalf("followed log: %q, %v", buf[:n], err)
	}
}
