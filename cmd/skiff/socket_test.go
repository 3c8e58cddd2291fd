package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLI_ReadsWhileAnotherSkiffRuns: while `skiff run` holds the data dir,
// runs list, runs get and logs are answered through the data dir's socket
// at once instead of waiting for the lock.
func TestCLI_ReadsWhileAnotherSkiffRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	p := writeFile(t, dir, "p.yaml", `
name: holder
tasks:
  - name: talk
    command: [/bin/sh, -c, 'echo hello from talk; while [ ! -e `+gate+` ]; do sleep 0.05; done']
`)
	data := filepath.Join(dir, "data")
	run := exec.Command(skiffBin, "--data-dir", data, "run", p, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(gate, nil, 0o644)
		run.Wait()
	}()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(data, socketName)); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no socket in the data dir")
		}
	}

	var id string
	deadline := time.Now().Add(30 * time.Second)
	for id == "" {
		r := skiff(t, data, "runs", "list", "-o", "name")
		if r.code != 0 {
			t.Fatalf("runs list while a run holds the data dir: exit %d\n%s", r.code, r.stderr)
		}
		id = strings.TrimSpace(r.stdout)
		if time.Now().After(deadline) {
			t.Fatal("the running run never listed")
		}
	}
	start := time.Now()
	get := skiff(t, data, "runs", "get", id, "-o", "json")
	if get.code != 0 || !strings.Contains(get.stdout, "RUNNING") {
		t.Errorf("runs get: exit %d\n%s%s", get.code, get.stdout, get.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("runs get took %v: it waited for the lock", d)
	}
	for {
		logs := skiff(t, data, "logs", id, "talk")
		if logs.code == 0 && strings.Contains(logs.stdout, "hello from talk") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of the running task: exit %d, %q %q", logs.code, logs.stdout, logs.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCLI_CancelAndWaitWithoutServer: runs cancel and runs wait work on the
// embedded node, through the skiff process that runs the run.
func TestCLI_CancelAndWaitWithoutServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", "name: sleeper\ntasks:\n  - name: nap\n    command: [/bin/sleep, '60']\n")
	data := filepath.Join(dir, "data")
	run := exec.Command(skiffBin, "--data-dir", data, "run", p, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	for end := time.Now().Add(30 * time.Second); id == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			run.Process.Kill()
			t.Fatal("the run never listed")
		}
		if r := skiff(t, data, "runs", "list", "-o", "name"); r.code == 0 {
			id = strings.TrimSpace(r.stdout)
		}
	}
	if r := skiff(t, data, "runs", "cancel", id); r.code != 0 {
		t.Fatalf("runs cancel: exit %d\n%s", r.code, r.stderr)
	}
	err := run.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("skiff run after a cancel: %v, want exit 1", err)
	}
	w := skiff(t, data, "runs", "wait", id)
	if w.code != 1 || !strings.Contains(w.stderr, "CANCELED") {
		t.Errorf("runs wait on the cancelled run: exit %d, %q", w.code, w.stderr)
	}
}
