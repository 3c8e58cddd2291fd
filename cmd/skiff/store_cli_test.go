package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_StoreCheck: `skiff store check` says what it found and exits 0
// on a healthy data dir and 1 on a damaged one; a damaged data dir makes
// other commands fail with one line naming the file, never a panic; and
// reset-log is the way out of a lost raft.db.
func TestCLI_StoreCheck(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	// raft-boltdb's raft.db (the WAL's damage is store's tests').
	env := append(os.Environ(), "SKIFF_RAFT_LOG_STORE=bolt")
	skiff := func(t testing.TB, data string, args ...string) result { return skiffWithEnv(t, env, data, args...) }
	if r := skiff(t, data, "run", "-o", "json", filepath.Join("..", "..", "examples", "hello", "pipeline.yaml")); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	r := skiff(t, data, "store", "check")
	if r.code != 0 || !strings.Contains(r.stdout, "ok    raft.db") || !strings.Contains(r.stdout, "referenced blobs verify") || strings.Contains(r.stdout, "FAIL") {
		t.Fatalf("healthy: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// A referenced blob lost.
	blobs, _ := filepath.Glob(filepath.Join(data, "blobs", "sha256", "*", "*"))
	var lost string
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > 13 { // not the empty blob
			lost = b
			break
		}
	}
	if lost == "" {
		t.Fatalf("no blob to lose among %v", blobs)
	}
	saved, _ := os.ReadFile(lost)
	os.Remove(lost)
	r = skiff(t, data, "store", "check")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  blob sha256:"+filepath.Base(lost)) || !strings.Contains(r.stdout, "not found") {
		t.Fatalf("lost blob: exit %d\nstdout:\n%s", r.code, r.stdout)
	}
	os.WriteFile(lost, saved, 0o644)

	// raft.db garbage: check reports it; run fails naming it.
	raftDB := filepath.Join(data, "store", "raft.db")
	good, _ := os.ReadFile(raftDB)
	os.WriteFile(raftDB, bytes.Repeat([]byte("garbage!"), len(good)/8), 0o600)
	r = skiff(t, data, "store", "check")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  raft.db") {
		t.Fatalf("garbage raft.db: exit %d\nstdout:\n%s", r.code, r.stdout)
	}
	r = skiff(t, data, "runs", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "raft.db") || strings.Contains(r.stderr, "panic") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Fatalf("runs list on a garbage raft.db: exit %d\nstderr:\n%s", r.code, r.stderr)
	}

	// raft.db lost: refused with the way out, which works.
	os.Remove(raftDB)
	r = skiff(t, data, "runs", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "skiff store reset-log") {
		t.Fatalf("runs list without raft.db: exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	if r = skiff(t, data, "store", "reset-log"); r.code != 0 {
		t.Fatalf("reset-log: exit %d\n%s", r.code, r.stderr)
	}
	if r = skiff(t, data, "store", "check"); r.code != 0 {
		t.Fatalf("after reset-log: exit %d\nstdout:\n%s", r.code, r.stdout)
	}
	r = skiff(t, data, "runs", "list", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, "SUCCEEDED") {
		t.Fatalf("runs after reset-log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCLI_RaftLogStoreFlag: --raft-log-store picks the raft log backend; a
// data dir written with one opens with the other (migrated, the old log
// kept aside), and a bad value is a usage error naming the flag.
func TestCLI_RaftLogStoreFlag(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	if r := skiff(t, data, "--raft-log-store", "bolt", "run", "-o", "json", filepath.Join("..", "..", "examples", "hello", "pipeline.yaml")); r.code != 0 {
		t.Fatalf("run with bolt: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "store", "raft.db")); err != nil {
		t.Fatalf("--raft-log-store bolt wrote no raft.db: %v", err)
	}
	r := skiff(t, data, "runs", "list", "-o", "json", "--raft-log-store", "wal")
	if r.code != 0 || !strings.Contains(r.stdout, "SUCCEEDED") {
		t.Fatalf("runs list after the switch to wal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, name := range []string{"raft-wal", "raft.db.migrated"} {
		if _, err := os.Stat(filepath.Join(data, "store", name)); err != nil {
			t.Errorf("after the migration: %v", err)
		}
	}
	if r := skiff(t, data, "store", "check"); r.code != 0 || !strings.Contains(r.stdout, "ok    raft-wal") {
		t.Fatalf("check after the migration: exit %d\n%s", r.code, r.stdout)
	}
	r = skiff(t, data, "--raft-log-store", "sqlite", "runs", "list")
	if r.code != exitBadInput || !strings.Contains(r.stderr, "--raft-log-store") || !strings.Contains(r.stderr, "sqlite") {
		t.Fatalf("bad --raft-log-store: exit %d, stderr %q", r.code, r.stderr)
	}
}
