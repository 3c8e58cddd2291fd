package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLI_SecondInterruptSaysWhatItLeftRunning: a first Ctrl-C starts
// canceling; a second leaves at once, with exit 1, and says which run it
// left unfinished and how to resume it. The step ignores SIGTERM, so the
// cancel is still in its grace period when the second Ctrl-C comes.
func TestCLI_SecondInterruptSaysWhatItLeftRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p := writeFile(t, dir, "p.yaml", `
name: stubborn
tasks:
  - name: sleeper
    command: [/bin/sh, -c, 'trap "" TERM; echo $$ > `+pidFile+`; sleep 60; true']
`)
	cmd := exec.Command(skiffBin, "--data-dir", filepath.Join(dir, "data"), "run", p, "--progress", "plain")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the step outlives skiff by design; end it here
		b, _ := os.ReadFile(pidFile)
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
	})
	waitForFile(t, pidFile)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "canceling the run") {
		if time.Now().After(deadline) {
			t.Fatalf("no cancel notice after the first Ctrl-C:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want code 1\n%s", err, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "leaving run ") || !strings.Contains(out, "skiff runs resume ") {
		t.Errorf("the second Ctrl-C did not say what it left and how to resume it:\n%s", out)
	}
}
