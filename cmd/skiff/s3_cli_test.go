package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skiffml/skiff/store/blob/s3/s3test"
)

// TestCLI_ArtifactStoreBadFlags: a bad --artifact-store (or S3 setting)
// exits 2 naming it, and the data dir remembers nothing of it.
func TestCLI_ArtifactStoreBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pipe := writeFile(t, dir, "p.yaml", shellPipeline)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--artifact-store", "gs://bucket/x"}, "must start with s3://"},
		{[]string{"--artifact-store", "s3://Bad_Bucket"}, "bucket"},
		{[]string{"--artifact-store", "s3://bucket/a//b"}, "prefix"},
		{[]string{"--artifact-store", "s3://bucket", "--s3-endpoint", "ftp://host"}, "Endpoint"},
	} {
		r := skiff(t, data, append(append([]string{"run"}, tc.args...), pipe)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--artifact-store") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %v: exit %d, stderr %q; want 2 and an error naming %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "blobs", artifactStoreFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused --artifact-store was remembered: %v", err)
	}
	if r := skiff(t, data, "runs", "list", "-o", "name"); r.code != 0 || r.stdout != "" {
		t.Fatalf("runs after refused starts: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// TestCLI_S3ArtifactStore: skiff run --artifact-store s3://... keeps the
// artifacts and logs passed between steps in the bucket (not the data
// dir), and later commands read them back without repeating the flags.
func TestCLI_S3ArtifactStore(t *testing.T) {
	t.Parallel()
	cfg := s3test.Config(t, "skiff/")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pipe := writeFile(t, dir, "p.yaml", shellPipeline)
	store := "s3://" + cfg.Bucket + "/skiff"
	r := skiff(t, data, "run", "--artifact-store", store, "--s3-endpoint", cfg.Endpoint, "--s3-path-style", "-o", "json", pipe)
	s := parseSummary(t, r)
	if r.code != 0 || s.State != "SUCCEEDED" || string(s.Outputs["size"]) != "11" {
		t.Fatalf("run: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	// The artifact "hello world" is an object of the bucket; the data dir
	// holds no blob but the empty one.
	ctx := context.Background()
	c := s3test.Client(t, cfg)
	var keys []string
	for oi := range c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Prefix: "skiff/sha256/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	const helloWorld = "skiff/sha256/b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
	if !strings.Contains(strings.Join(keys, " "), helloWorld) {
		t.Fatalf("bucket keys %v: no %s", keys, helloWorld)
	}
	var local []string
	filepath.WalkDir(filepath.Join(data, "blobs", "sha256"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			local = append(local, p)
		}
		return nil
	})
	if len(local) != 0 {
		t.Fatalf("the data dir keeps blobs of its own: %v", local)
	}
	// No flags: the data dir remembers its artifact store.
	out := filepath.Join(dir, "text.out")
	if r := skiff(t, data, "artifacts", "get", s.RunID[:8], "make", "text", "-o", out); r.code != 0 {
		t.Fatalf("artifacts get: exit %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "hello world" {
		t.Fatalf("artifact bytes = %q", b)
	}
	// The work dirs are gone: the logs come from their blobs in the bucket.
	if logs := skiff(t, data, "logs", s.RunID[:8]); !strings.Contains(logs.stdout, "make: made it") || !strings.Contains(logs.stdout, "use: hello world") {
		t.Fatalf("logs:\n%s%s", logs.stdout, logs.stderr)
	}
	if r := skiff(t, data, "--artifact-store", "local", "runs", "list"); r.code != 2 || !strings.Contains(r.stderr, "differs") {
		t.Fatalf("another --artifact-store on this data dir: exit %d %s", r.code, r.stderr)
	}
	// An object whose bytes do not match its key is an error, never output.
	bad := []byte("not the artifact")
	if _, err := c.PutObject(ctx, cfg.Bucket, helloWorld, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if obj, err := c.GetObject(ctx, cfg.Bucket, helloWorld, minio.GetObjectOptions{}); err == nil {
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(b, bad) {
			t.Fatalf("the server did not take the tampered object: %q, %v", b, err)
		}
	}
	out2 := filepath.Join(dir, "text2.out")
	if r := skiff(t, data, "artifacts", "get", s.RunID[:8], "make", "text", "-o", out2); r.code == 0 || !strings.Contains(r.stderr, "damaged") {
		t.Fatalf("artifacts get of a tampered object: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Fatalf("a tampered artifact was written out: %v", err)
	}
}

// TestS3_ArtifactBench measures the wall time of a run whose one step
// writes a SKIFF_S3_BENCH_MIB MiB artifact of random bytes, with the local
// blob store and with S3 (make test-s3's SeaweedFS on loopback). It is a
// measurement, not a check: it runs only when SKIFF_S3_BENCH_MIB is set:
//
//	SKIFF_S3_BENCH_MIB=1024 tools/seaweedfs/s3-test.sh go test -count=1 -run TestS3_ArtifactBench -v ./cmd/skiff/
func TestS3_ArtifactBench(t *testing.T) {
	mib := os.Getenv("SKIFF_S3_BENCH_MIB")
	if mib == "" {
		t.Skip("a measurement: set SKIFF_S3_BENCH_MIB (and run it under tools/seaweedfs/s3-test.sh)")
	}
	cfg := s3test.Config(t, "bench/")
	dir := t.TempDir()
	pipe := writeFile(t, dir, "p.yaml", `
name: artifact-bench
executor: local
tasks:
  - name: write
    command: [/bin/sh, -c, 'head -c `+mib+`M /dev/urandom > {{outputs.data}}']
    outputs: {data: Dataset}
`)
	for _, store := range [][]string{nil, {"--artifact-store", "s3://" + cfg.Bucket + "/bench", "--s3-endpoint", cfg.Endpoint, "--s3-path-style"}} {
		data := filepath.Join(dir, "data")
		start := time.Now()
		r := skiff(t, data, append(append([]string{"run"}, store...), "-o", "json", pipe)...)
		wall := time.Since(start)
		if s := parseSummary(t, r); s.State != "SUCCEEDED" {
			t.Fatalf("run: %+v\n%s", s, r.stderr)
		}
		var got struct {
			Tasks []struct {
				Secs float64 `json:"duration_seconds"`
			} `json:"tasks"`
		}
		json.Unmarshal([]byte(r.stdout), &got)
		name := "local"
		if store != nil {
			name = store[1]
		}
		step := 0.0
		if len(got.Tasks) == 1 {
			step = got.Tasks[0].Secs
		}
		t.Logf("%s: %s MiB artifact: skiff run %.2f s wall, step (start to outputs stored) %.2f s", name, mib, wall.Seconds(), step)
		os.RemoveAll(data)
	}
}
