package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/executors/docker/dockertest"
)

// TestCluster_ArtifactsAndLogsOutliveTheNodeThatMadeThem: three servers
// run examples/hello in Docker steps (a step that reads an artifact made
// on another node fetches it from a holder); the node that ran the first
// step is killed with SIGKILL; its step's artifact and log, and the run's
// output, are still read through the API of each node left.
func TestCluster_ArtifactsAndLogsOutliveTheNodeThatMadeThem(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dockertest.Client(t)
	dir := t.TempDir()
	procs := startThreeServers(t, dir, "--default-executor", "docker", "--keep-work-dirs", "--worker-heartbeat", "200ms", "--node-ttl", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitLeader(ctx, t, procs[0].url)
	p, err := os.ReadFile(dockerPipeline(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	c0 := api.NewClient(procs[0].url, "")
	sum := runToSuccess(ctx, t, c0, 2*time.Minute, api.Run{DisplayName: "hello", PipelineSpec: mustJSON(string(p)),
		RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]json.RawMessage{"who": json.RawMessage(`"skiff"`)}}}, "hello-1")
	var greeting, loud struct {
		Digest string `json:"digest"`
	}
	for _, task := range sum.Tasks {
		if task.Name == "greet" {
			_ = json.Unmarshal(task.Outputs["greeting"], &greeting)
		}
	}
	_ = json.Unmarshal(sum.Outputs["loud"], &loud)
	if greeting.Digest == "" || loud.Digest == "" {
		t.Fatalf("no artifact digests in %+v", sum)
	}
	// The node that ran greet kept its work dir with the greeting.
	victim := -1
	for i, p := range procs {
		_ = filepath.WalkDir(filepath.Join(dir, p.id, "docker"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, _ := os.ReadFile(path); string(b) == "hello, skiff\n" {
					victim = i
				}
			}
			return nil
		})
	}
	if victim < 0 {
		t.Fatal("no node kept greet's work dir")
	}
	if err := procs[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = procs[victim].cmd.Wait()
	t.Logf("killed %s, which ran greet", procs[victim].id)
	for i, p := range procs {
		if i == victim {
			continue
		}
		cl := api.NewClient(p.url, "")
		for digest, want := range map[string]string{greeting.Digest: "hello, skiff\n", loud.Digest: "HELLO, SKIFF\n"} {
			pollUntil(t, 30*time.Second, p.id+" serves "+digest, func() error {
				rc, err := cl.Artifact(ctx, digest)
				if err != nil {
					return err
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				if err != nil || string(b) != want {
					return fmt.Errorf("read %q, %v", b, err)
				}
				return nil
			})
		}
		pollUntil(t, 30*time.Second, p.id+" serves greet's log", func() error {
			rc, err := cl.TaskLogs(ctx, sum.RunID, "greet", 0, false)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			return err
		})
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, skiffBin, "--server", p.url, "cluster", "status")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "BLOBS PENDING") {
			t.Errorf("cluster status on %s: %v\n%s", p.id, err, out.String())
		}
	}
}

// TestCluster_ArtifactReplicationBench measures the wall time of a run
// whose one Docker step writes a SKIFF_BLOB_BENCH_MIB MiB artifact of
// random bytes, on a server that is a cluster of one and on a cluster of
// three (where the step is reported only once a second server holds the
// artifact). It is a measurement, not a check: it runs only when
// SKIFF_BLOB_BENCH_MIB is set:
//
//	SKIFF_BLOB_BENCH_MIB=1024 go test -count=1 -run TestCluster_ArtifactReplicationBench -v ./cmd/skiff/
func TestCluster_ArtifactReplicationBench(t *testing.T) {
	mib := os.Getenv("SKIFF_BLOB_BENCH_MIB")
	if mib == "" {
		t.Skip("a measurement: set SKIFF_BLOB_BENCH_MIB")
	}
	dockertest.Client(t)
	pipe := `
name: artifact-bench
executor: docker
tasks:
  - name: write
    image: ` + dockertest.Image + `
    command: [/bin/sh, -c, 'dd if=/dev/urandom of={{outputs.data}} bs=1048576 count=` + mib + `']
    outputs: {data: Dataset}
`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	measure := func(name, url string) {
		start := time.Now()
		sum := runToSuccess(ctx, t, api.NewClient(url, ""), 15*time.Minute, api.Run{DisplayName: "bench", PipelineSpec: mustJSON(pipe)}, "bench-"+name)
		wall := time.Since(start)
		step := 0.0
		if len(sum.Tasks) == 1 {
			step = sum.Tasks[0].DurationSecs
		}
		t.Logf("%s: %s MiB artifact: run %.2f s wall (submit to SUCCEEDED), task duration %.2f s as recorded", name, mib, wall.Seconds(), step)
	}

	dir := t.TempDir()
	one := freeAddrs(t, 1)[0]
	solo := exec.Command(skiffBin, "--data-dir", filepath.Join(dir, "solo"), "server", "--no-auth", "--listen", one, "--default-executor", "docker")
	if err := solo.Start(); err != nil {
		t.Fatal(err)
	}
	measure("one node", "http://"+one)
	_ = solo.Process.Signal(syscall.SIGTERM)
	_ = solo.Wait()
	_ = os.RemoveAll(filepath.Join(dir, "solo"))

	procs := startThreeServers(t, dir, "--default-executor", "docker")
	waitLeader(ctx, t, procs[0].url)
	time.Sleep(2 * time.Second) // let the three workers register (a wait for an event the API does not show)
	measure("three nodes", procs[0].url)
	ms, err := api.NewClient(procs[0].url, "").ClusterMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms.Members {
		if m.Blobs != nil {
			t.Logf("%s: sent %d bytes, received %d bytes", m.ID, m.Blobs.BytesSent, m.Blobs.BytesReceived)
		}
	}
}

// runToSuccess creates run (retried until a server takes it) and waits
// up to limit for its end, which must be SUCCEEDED.
func runToSuccess(ctx context.Context, t *testing.T, cl *api.Client, limit time.Duration, run api.Run, key string) api.RunSummary {
	t.Helper()
	var created api.Run
	pollUntil(t, 60*time.Second, "the run created", func() (err error) {
		created, err = cl.CreateRun(ctx, run, key)
		return err
	})
	var sum api.RunSummary
	pollUntil(t, limit, "the run's end", func() error {
		s, err := cl.RunSummary(ctx, created.RunID)
		if err != nil {
			return err
		}
		if s.State != "SUCCEEDED" && s.State != "FAILED" && s.State != "CANCELED" {
			return fmt.Errorf("run %s", s.State)
		}
		sum = s
		return nil
	})
	if sum.State != "SUCCEEDED" {
		t.Fatalf("run %s ended %s: %s %+v", key, sum.State, sum.Error, sum.Tasks)
	}
	return sum
}

// waitLeader waits until the server at url knows a leader.
func waitLeader(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	pollUntil(t, 60*time.Second, "a leader", func() error {
		ms, err := api.NewClient(url, "").ClusterMembers(ctx)
		if err != nil {
			return err
		}
		if ms.LeaderID == "" {
			return fmt.Errorf("no leader yet")
		}
		return nil
	})
}
