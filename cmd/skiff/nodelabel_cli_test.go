package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/store"
)

// TestServer_NodeLabelRefusesBadUse: a malformed --node-label is a usage
// error (exit 2) naming the flag and the bad pair, and the server leaves
// its data dir untouched.
func TestServer_NodeLabelRefusesBadUse(t *testing.T) {
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"gpu"}, `--node-label "gpu": want KEY=VALUE`},
		{[]string{"-gpu=a100"}, `--node-label "-gpu=a100": label name`},
		{[]string{"gpu=a 100"}, `--node-label "gpu=a 100": label gpu value`},
		{[]string{"gpu=a100", "gpu=t4"}, `--node-label "gpu=t4": gpu is already "a100"`},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		args := []string{"server", "--listen", "127.0.0.1:0", "--no-auth"}
		for _, l := range tc.labels {
			args = append(args, "--node-label", l)
		}
		r := skiff(t, dir, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.labels, r.code, r.stderr, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "store")); err == nil {
			t.Errorf("%v: the refused server created its store", tc.labels)
		}
	}
}

// TestRun_NodeSelectorOnAWorkstationWarns: a workstation run does not
// place by node selectors; it says so for each task that has one (at any
// depth) and runs the steps.
func TestRun_NodeSelectorOnAWorkstationWarns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	src := "name: p\ntasks:\n  - {name: a, command: [echo, hi], nodeSelector: {gpu: a100}}\n  - name: g\n    tasks:\n      - {name: b, command: [echo, hi], nodeSelector: {zone: b}}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := skiff(t, t.TempDir(), "run", file)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"tasks[0].nodeSelector: this machine runs every step itself", "tasks[1].tasks[0].nodeSelector"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestServer_MinFreeDiskFlag: a negative --min-free-disk-mib is a usage
// error naming the flag; the check reports a file system below the floor
// with its free space and says nothing above it, or when turned off.
func TestServer_MinFreeDiskFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	r := skiff(t, dir, "server", "--listen", "127.0.0.1:0", "--no-auth", "--min-free-disk-mib", "-1")
	if r.code != 2 || !strings.Contains(r.stderr, "--min-free-disk-mib -1") {
		t.Errorf("exit %d, stderr %q; want 2 naming the flag", r.code, r.stderr)
	}
	tmp := t.TempDir()
	if why := diskCheck(1<<60, t.TempDir(), tmp)(); !strings.Contains(why, "MiB free under ") {
		t.Errorf("below the floor: %q", why)
	}
	if why := diskCheck(1, tmp)(); why != "" {
		t.Errorf("above the floor: %q", why)
	}
	if diskCheck(0, tmp) != nil {
		t.Error("--min-free-disk-mib 0 still checks")
	}
}

// TestServer_RaftTimingFlags: the election knobs are flags, checked
// before anything opens: a heartbeat under 10ms, an election timeout
// under the heartbeat, or a lease over it is a usage error naming the
// flag; good values reach the raft config.
func TestServer_RaftTimingFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--raft-heartbeat-timeout", "1ms"}, "--raft-heartbeat-timeout 1ms"},
		{[]string{"--raft-heartbeat-timeout", "400ms"}, "--raft-election-timeout 200ms"},
		{[]string{"--raft-lease-timeout", "300ms"}, "--raft-lease-timeout 300ms"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		r := skiff(t, dir, append([]string{"server", "--listen", "127.0.0.1:0", "--no-auth"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("%v: exit %d, stderr %q; want 2 saying %q", tc.args, r.code, r.stderr, tc.says)
		}
	}
	app := &cli.App{Flags: clusterFlags(), Action: func(c *cli.Context) error {
		var rc store.RaftConfig
		if err := raftTimings(c, &rc); err != nil {
			return err
		}
		if rc.HeartbeatTimeout != 500*time.Millisecond || rc.ElectionTimeout != time.Second || rc.LeaderLeaseTimeout != 400*time.Millisecond {
			t.Errorf("raft config %+v", rc)
		}
		return nil
	}}
	if err := app.Run([]string{"skiff", "--raft-heartbeat-timeout", "500ms", "--raft-election-timeout", "1s", "--raft-lease-timeout", "400ms"}); err != nil {
		t.Fatal(err)
	}
}
