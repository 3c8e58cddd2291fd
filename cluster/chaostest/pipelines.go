package chaostest

import (
	"fmt"
	"strings"

	"github.com/skiffml/skiff/cluster/containertest"
)

// Workload is a kind of run the workload submits.
type Workload string

// The workloads. Every step records its start (containertest.RecordStart),
// prints a log line and writes an artifact.
const (
	WFanout Workload = "fanout" // four independent steps
	WChain  Workload = "chain"  // three steps, each reading the one before's artifact
	WLoop   Workload = "loop"   // a ParallelFor over three items
	WCached Workload = "cached" // a cached step (same key in every run) and one that is not
	WCancel Workload = "cancel" // a slow chain the client cancels after 0.5 to 3 s
	WRetry  Workload = "retry"  // a step that fails on its first attempt, retry limit 2
)

// Workloads lists every kind of run, in a fixed order.
var Workloads = []Workload{WFanout, WChain, WLoop, WCached, WCancel, WRetry}

// shell is a task command that records its start, logs a line, then runs
// script (whose $1, $2... are the task's args).
func shell(task, script string) string {
	return fmt.Sprintf(`[/bin/sh, -c, '%s; echo "log of $SKIFF_TASK attempt $SKIFF_ATTEMPT"; %s', %s]`, containertest.RecordStart, script, task)
}

// Pipeline is the Skiff YAML of a workload.
func Pipeline(w Workload) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: chaos-%s\ntasks:\n", w)
	artifactStep := func(name, pause string) {
		fmt.Fprintf(&b, "  - name: %s\n    command: %s\n    args: [\"{{outputs.out}}\"]\n    outputs: {out: Artifact}\n",
			name, shell(name, `echo "$SKIFF_RUN_ID $SKIFF_TASK" > "$1"; /bin/sleep `+pause))
	}
	chainStep := func(name, prev, pause string) {
		fmt.Fprintf(&b, "  - name: %s\n    command: %s\n    args: [\"{{inputs.in}}\", \"{{outputs.out}}\"]\n    inputs: {in: {type: Artifact, from: %s.out}}\n    outputs: {out: Artifact}\n",
			name, shell(name, `/bin/cat "$1" > "$2"; echo "$SKIFF_TASK" >> "$2"; /bin/sleep `+pause), prev)
	}
	switch w {
	case WFanout:
		for i := range 4 {
			artifactStep(fmt.Sprintf("f%d", i), "0.3")
		}
	case WChain, WCancel:
		pause := "0.3"
		if w == WCancel {
			pause = "1.5"
		}
		artifactStep("c0", pause)
		for i := 1; i < 4; i++ {
			chainStep(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d", i-1), pause)
		}
	case WLoop:
		fmt.Fprintf(&b, "  - name: sweep\n    parallelFor: {items: [1, 2, 3], as: n}\n    tasks:\n")
		fmt.Fprintf(&b, "      - name: item\n        command: %s\n        args: [\"{{inputs.n}}\", \"{{outputs.out}}\"]\n        inputs: {n: {param: n, type: int}}\n        outputs: {out: Artifact}\n",
			shell("item", `echo "item $1" > "$2"; /bin/sleep 0.2`))
	case WCached:
		fmt.Fprintf(&b, "  - name: fixed\n    command: %s\n    args: [\"{{outputs.out}}\"]\n    outputs: {out: Artifact}\n    cache: {enabled: true}\n",
			shell("fixed", `echo "the same bytes in every run" > "$1"`))
		chainStep("after", "fixed", "0.1")
	case WRetry:
		fmt.Fprintf(&b, "  - name: flaky\n    command: %s\n    args: [\"{{outputs.out}}\"]\n    outputs: {out: Artifact}\n    retry: {limit: 2, backoff: 1s}\n",
			shell("flaky", `m=/shared/marks/$SKIFF_RUN_ID; /bin/mkdir -p /shared/marks; if [ ! -e $m ]; then : > $m; echo failing once; exit 1; fi; echo ok > "$1"`))
	}
	return b.String()
}

// retryLimit is the retry limit of a workload's tasks.
func retryLimit(w Workload) int {
	if w == WRetry {
		return 2
	}
	return 0
}
