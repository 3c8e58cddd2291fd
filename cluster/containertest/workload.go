package containertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// RecordStart is the shell line a test step begins with: one line per
// start in the shared side-effect file (run, task, attempt, the node it
// ran on). Cluster.Starts reads them back.
const RecordStart = `echo "$SKIFF_RUN_ID $SKIFF_TASK $SKIFF_ATTEMPT $(/bin/hostname)" >> /shared/starts.log`

// Step is a task's command: RecordStart, then a pause.
func Step(pause string) string {
	return fmt.Sprintf(`[/bin/sh, -c, '%s; /bin/sleep %s']`, RecordStart, pause)
}

// Fanout is a pipeline of n independent steps.
func Fanout(n int, pause string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: fanout-%d\ntasks:\n", n)
	for i := range n {
		fmt.Fprintf(&b, "  - name: f%d\n    command: %s\n", i, Step(pause))
	}
	return b.String()
}

// Chain is a pipeline of n steps, each after the one before.
func Chain(n int, pause string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: chain-%d\ntasks:\n", n)
	for i := range n {
		fmt.Fprintf(&b, "  - name: c%d\n    command: %s\n", i, Step(pause))
		if i > 0 {
			fmt.Fprintf(&b, "    after: [c%d]\n", i-1)
		}
	}
	return b.String()
}

// SpecJSON is a Skiff YAML pipeline as a run's pipeline_spec.
func SpecJSON(yaml string) json.RawMessage {
	b, _ := json.Marshal(yaml)
	return b
}

// Submit creates a run through cl. A refused submission is sent again
// with the same request id, as a client should (one run results,
// invariant 1); each refusal is logged: during a leader change the API
// can answer 503 ("leadership lost while committing").
func Submit(t testing.TB, cl *api.Client, name, yaml string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := cl.CreateRun(ctx, api.Run{DisplayName: name, PipelineSpec: SpecJSON(yaml)}, name)
		cancel()
		if err == nil {
			return r.RunID
		}
		if time.Now().After(deadline) {
			t.Fatalf("submit %s through %s: %v", name, cl.BaseURL, err)
		}
		t.Logf("submit %s through %s refused, sent again: %v", name, cl.BaseURL, err)
		time.Sleep(200 * time.Millisecond) // then the same request again
	}
}

// Succeeded counts the run's SUCCEEDED tasks.
func Succeeded(r api.Run) int {
	n := 0
	if r.RunDetails != nil {
		for _, d := range r.RunDetails.TaskDetails {
			if d.State == "SUCCEEDED" {
				n++
			}
		}
	}
	return n
}

// Final reports whether a run state is final.
func Final(state string) bool {
	switch state {
	case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
		return true
	}
	return false
}

// StepStart is one line of the side-effect file.
type StepStart struct{ Run, Task, Attempt, Node string }

// Starts reads the side-effect file the steps wrote (none yet: empty).
func (c *Cluster) Starts(t testing.TB) []StepStart {
	t.Helper()
	f, err := os.Open(filepath.Join(c.Shared, "starts.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []StepStart
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			t.Fatalf("side-effect line %q", sc.Text())
		}
		out = append(out, StepStart{fs[0], fs[1], fs[2], fs[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
