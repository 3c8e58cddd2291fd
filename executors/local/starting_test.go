package local

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/skiffml/skiff/executors"
)

// TestLocal_MaxStartingBoundsStartsNotRuns: with one starting slot, three
// steps still all run at once: the slot goes back when a process started.
func TestLocal_MaxStartingBoundsStartsNotRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MaxStarting = 1 })
	gate := filepath.Join(t.TempDir(), "gate")
	for i := 0; i < 3; i++ {
		f.start(t, shSpec("s"+strconv.Itoa(i), "while [ ! -e "+gate+" ]; do sleep 0.02; done"))
	}
	for i := 0; i < 3; i++ {
		f.rec.wait(t, "s"+strconv.Itoa(i), executors.EventStarted)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if ev := f.rec.wait(t, "s"+strconv.Itoa(i), executors.EventExited); ev.State.String() != "SUCCEEDED" {
			t.Errorf("s%d: %s %s", i, ev.State, ev.Reason)
		}
	}
}
