package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/store/blob/s3/s3test"
)

// TestCLI_GCRealRuns: skiff gc over a data dir with real runs, its blobs
// on the local disk.
func TestCLI_GCRealRuns(t *testing.T) {
	t.Parallel()
	gcRealRuns(t, nil)
}

// TestCLI_GCRealRunsS3: the same with the blobs in S3.
func TestCLI_GCRealRunsS3(t *testing.T) {
	t.Parallel()
	cfg := s3test.Config(t, "")
	gcRealRuns(t, []string{"--artifact-store", "s3://" + cfg.Bucket, "--s3-endpoint", cfg.Endpoint, "--s3-path-style"})
}

// gcRealRuns: an unreferenced old blob goes (a dry run lists it with its
// size first and deletes nothing); the blobs of runs stay until retention
// deletes the runs; then every blob but the empty one goes.
func gcRealRuns(t *testing.T, storeArgs []string) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pipe := writeFile(t, dir, "p.yaml", shellPipeline)
	var ids []string
	for _, greeting := range []string{"hello", "bye"} {
		r := skiff(t, data, append(append([]string{"run"}, storeArgs...), "-p", "greeting="+greeting, "-o", "json", pipe)...)
		if s := parseSummary(t, r); s.State != "SUCCEEDED" {
			t.Fatalf("run: %+v\n%s", s, r.stderr)
		}
		ids = append(ids, parseSummary(t, r).RunID)
	}
	blobsNow := func() map[string]int64 {
		t.Helper()
		r := skiff(t, data, "gc", "--dry-run", "--gc-grace", "0s", "--keep-runs-days", "1", "--now", time.Now().Add(1000*time.Hour).Format(time.RFC3339), "-o", "json")
		var rep struct {
			Blobs []blob.Info `json:"blobs"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("gc -o json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		out := map[string]int64{}
		for _, b := range rep.Blobs {
			out[b.Digest] = b.Size
		}
		return out
	}
	all := blobsNow() // every blob but the empty one, as a dry run far ahead says
	if len(all) < 4 {
		t.Fatalf("two runs stored %d blobs: %v", len(all), all)
	}
	// An upload nobody refers to, an hour old by the clock gc is given.
	bs := openTestBlobs(t, data, storeArgs)
	orphan, err := bs.Put(context.Background(), strings.NewReader("nobody refers to me"))
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Hour).Format(time.RFC3339)
	dry := skiff(t, data, "gc", "--dry-run", "--now", later)
	if dry.code != 0 || !strings.Contains(dry.stdout, "would delete blob "+orphan.Digest) || strings.Count(dry.stdout, "would delete blob") != 1 ||
		!strings.Contains(dry.stdout, " B\n") {
		t.Fatalf("gc --dry-run: exit %d\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	if !bs.Has(orphan.Digest) {
		t.Fatal("a dry run deleted the blob")
	}
	if r := skiff(t, data, "gc", "--now", later); r.code != 0 || !strings.Contains(r.stdout, "deleted 0 run(s) and 1 blob(s)") {
		t.Fatalf("gc: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if bs.Has(orphan.Digest) {
		t.Fatal("gc kept the unreferenced blob")
	}
	for d := range all {
		if !bs.Has(d) {
			t.Fatalf("gc deleted %s, which a run refers to", d)
		}
	}
	// Retention: two days on, runs kept one day go, and their blobs.
	r := skiff(t, data, "gc", "--keep-runs-days", "1", "--now", time.Now().Add(48*time.Hour).Format(time.RFC3339))
	if r.code != 0 || !strings.Contains(r.stdout, "deleted run "+ids[0]) || !strings.Contains(r.stdout, "deleted run "+ids[1]) {
		t.Fatalf("gc --keep-runs-days 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for d := range all {
		if bs.Has(d) {
			t.Errorf("%s outlived its runs", d)
		}
	}
	if !bs.Has(blob.EmptyDigest) {
		t.Error("gc deleted the empty blob")
	}
	if l := skiff(t, data, "runs", "list", "-o", "name"); l.stdout != "" {
		t.Errorf("runs left: %q", l.stdout)
	}
}

// openTestBlobs opens the data dir's blob store as skiff does.
func openTestBlobs(t *testing.T, data string, storeArgs []string) *blob.Store {
	t.Helper()
	if len(storeArgs) == 0 {
		b, err := blob.Open(filepath.Join(data, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	app := newApp()
	var st *blob.Store
	app.Commands = append(app.Commands, &cli.Command{Name: "open-blobs", Action: func(c *cli.Context) (err error) {
		st, err = openBlobs(c, data)
		return err
	}})
	if err := app.Run(append([]string{"skiff"}, append(storeArgs, "open-blobs")...)); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCLI_GCBadFlags(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	if r := skiff(t, data, "run", writeFile(t, t.TempDir(), "p.yaml", shellPipeline)); r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	for _, args := range [][]string{
		{"--keep-runs-days", "soon"},
		{"--keep-runs-days", "=3"},
		{"--keep-runs-days", "7", "--keep-runs-days", "9"},
		{"--gc-grace", "-1h"},
		{"-o", "xml"},
	} {
		r := skiff(t, data, append([]string{"gc"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "-")) {
			t.Errorf("gc %v: exit %d %s", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "blobs", artifactStoreFile)); !os.IsNotExist(err) {
		t.Error("gc wrote an artifact store setting")
	}
}

func FuzzParseKeepRuns(f *testing.F) {
	for _, s := range []string{"30", "team-a=7", "=3", "a=b", "x=-1", "99999999999999999999"} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m, err := parseKeepRuns([]string{a, b})
		if err != nil {
			if !strings.Contains(err.Error(), "--keep-runs-days[") {
				t.Fatalf("error without the flag: %v", err)
			}
			return
		}
		if len(m) != 2 {
			t.Fatalf("two values, %d entries", len(m))
		}
		for ns, d := range m {
			if d < 0 || d > 36500*24*time.Hour || strings.ContainsAny(ns, " /=") {
				t.Fatalf("entry %q: %s", ns, d)
			}
		}
	})
}

// TestCLI_ServerGCInterval: skiff server --gc-interval collects on its own.
func TestCLI_ServerGCInterval(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	bs, err := blob.Open(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := bs.Put(context.Background(), strings.NewReader("nobody refers to me"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(skiffBin, "--data-dir", data, "server", "--no-auth", "--listen", "127.0.0.1:0",
		"--gc-interval", "100ms", "--gc-grace", "0s", "--keep-runs-days", "30")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server stderr:\n%s", stderr.String())
		}
	})
	pollUntil(t, 60*time.Second, "the server's gc deletes the unreferenced blob", func() error {
		if bs.Has(orphan.Digest) {
			return errors.New("still there")
		}
		return nil
	})
	if !bs.Has(blob.EmptyDigest) {
		t.Fatal("the server's gc deleted the empty blob")
	}
}
