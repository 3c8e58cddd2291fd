package sim_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/executortest"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store/blob"
)

// TestConformance runs the suite with sim configured per case: sim runs
// no commands, so the harness declares it Synthetic (artifacts without
// bytes, no logs) and the cases about bytes skip.
func TestConformance(t *testing.T) {
	long := sim.Behavior{Duration: time.Hour}
	executortest.Run(t, executortest.Harness{
		New: func(t testing.TB, dir string) (executors.Executor, *blob.Store) {
			blobs, err := blob.Open(filepath.Join(dir, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			return sim.New(sim.Config{Seed: 1, Tasks: map[string]sim.Behavior{
				executortest.TaskOK: {Outputs: map[string]json.RawMessage{
					"n": json.RawMessage(fmt.Sprint(executortest.OutputN)),
				}},
				executortest.TaskFail:       {Fail: true, ExitCode: executortest.FailExitCode},
				executortest.TaskTimeout:    long,
				executortest.TaskCancel:     long,
				executortest.TaskConcurrent: {Duration: 50 * time.Millisecond},
			}}), blobs
		},
		Synthetic: true,
		Deadline:  10 * time.Second,
	})
}
