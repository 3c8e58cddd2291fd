package main

import (
	"fmt"
	"strings"
)

// Loops fold: the tasks of a ParallelFor's iterations ("loop[3].train",
// "loop[0].inner[1].x") are shown as one line per top-level loop with
// counts by state, the failed ones listed under it, in the live view and
// in the final summary.

// loopOf returns the top-level loop whose iteration the task belongs to,
// or "" for a task outside any loop.
func loopOf(name string) string {
	if i := strings.IndexByte(name, '['); i > 0 {
		return name[:i]
	}
	return ""
}

// foldOrder is the order counts are written in.
var foldOrder = []string{"RUNNING", "SUCCEEDED", "FAILED", "CACHED", "CANCELED", "SKIPPED", "PENDING"}

// loopFold counts a loop's tasks by state.
type loopFold struct {
	iterations map[string]bool
	counts     map[string]int
	failed     []string
}

func (f *loopFold) add(name, state string) {
	if f.counts == nil {
		f.counts, f.iterations = map[string]int{}, map[string]bool{}
	}
	if i := strings.IndexByte(name, ']'); i > 0 {
		f.iterations[name[:i+1]] = true
	}
	f.counts[state]++
	if state == "FAILED" {
		f.failed = append(f.failed, name)
	}
}

// text is "3 iterations: 2 running, 9 succeeded, 1 failed".
func (f *loopFold) text() string {
	var parts []string
	for _, s := range foldOrder {
		if n := f.counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(s)))
		}
	}
	return fmt.Sprintf("%d iterations: %s", len(f.iterations), strings.Join(parts, ", "))
}

// foldLoops groups task names: folds[loop] for the tasks of each loop's
// iterations; the others (loops themselves included) are kept in order.
func foldLoops(names []string, state func(string) string) (kept []string, folds map[string]*loopFold) {
	folds = map[string]*loopFold{}
	for _, n := range names {
		loop := loopOf(n)
		if loop == "" {
			kept = append(kept, n)
			continue
		}
		f := folds[loop]
		if f == nil {
			f = &loopFold{}
			folds[loop] = f
		}
		f.add(n, state(n))
	}
	return kept, folds
}

// maxFailedShown bounds the failed iterations listed under a loop.
const maxFailedShown = 3

// failedLines lists a loop's failed tasks, indented, at most
// maxFailedShown of them.
func (f *loopFold) failedLines(indent string) []string {
	var out []string
	for i, n := range f.failed {
		if i == maxFailedShown {
			out = append(out, fmt.Sprintf("%s… and %d more failed", indent, len(f.failed)-maxFailedShown))
			break
		}
		out = append(out, indent+"✘ "+n)
	}
	return out
}
