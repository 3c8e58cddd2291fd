package bench

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain runs ReopenChild when this test binary is started as the
// --reopen child (reopenChildCmd).
func TestMain(m *testing.M) {
	if dir := os.Getenv("SKIFF_BENCH_REOPEN_CHILD"); dir != "" {
		entries, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_REOPEN_ENTRIES"))
		if err := ReopenChild(context.Background(), dir, entries, true, "", os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func reopenChildCmd(dir string, entries int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "SKIFF_BENCH_REOPEN_CHILD="+dir, "SKIFF_BENCH_REOPEN_ENTRIES="+strconv.Itoa(entries))
	return cmd
}

// TestMeasureReopen_ReplaysTheKilledChildsLog: a child process fills a log
// of at least the asked entries and is killed with SIGKILL mid-run; the
// reopened node holds the child's run (its state came from that data
// dir), holds every entry the child reported, resumes the run and makes
// a decision on it, with state.db kept and with state.db lost (then the
// run can only have come from re-applying the log).
func TestMeasureReopen_ReplaysTheKilledChildsLog(t *testing.T) {
	const entries = 300
	res := MeasureReopen(context.Background(), ReopenConfig{Entries: entries, NoSync: true, Child: reopenChildCmd, Timeout: time.Minute}, t.TempDir())
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	if !res.Killed || res.Entries < entries || res.LogEntries < res.Entries || res.Snapshots != 0 || res.FreshOpenMs <= 0 {
		t.Errorf("result %+v: want a killed child with at least %d entries, all in the reopened log, no snapshot", res, entries)
	}
	for name, x := range map[string]ReopenTiming{"kept": res.Kept, "lost": res.Lost} {
		if x.Error != "" || x.Resumed != 1 || x.Applied < res.Entries || x.OpenMs <= 0 || x.FirstDecisionMs < x.OpenMs || x.FirstDispatchMs < x.FirstDecisionMs {
			t.Errorf("state %s: %+v", name, x)
		}
	}
	t.Logf("%+v", res)
	var out strings.Builder
	(&Report{Reopen: &res}).writeReopen(&out)
	if !strings.Contains(out.String(), "reopen after kill -9") || !strings.Contains(out.String(), "state.db lost: open") {
		t.Errorf("table:\n%s", out.String())
	}
}
