package chaostest

import (
	"fmt"
	"strconv"

	"github.com/skiffml/skiff/cluster/containertest"
)

// countStarts checks the steps' side-effect lines against the attempts
// the runs record (by run id and task name): an attempt started twice, or
// an attempt number above what the run records for that task, is an
// execution started beyond its retry policy. A task may have more
// attempts than its retry limit plus one: an attempt lost with its node
// does not count against the retries, and the store records each. Tasks
// the runs do not name (a run not final) are checked for twice-started
// attempts only. It returns a line for each offence.
func countStarts(starts []containertest.StepStart, recorded map[[2]string]int) (twice, unknown int, lines []string) {
	seen := map[containertest.StepStart]int{}
	for _, st := range starts {
		k := st
		k.Node = ""
		if seen[k]++; seen[k] == 2 {
			twice++
			lines = append(lines, fmt.Sprintf("started twice: run %s task %s attempt %s (again on %s)", st.Run, st.Task, st.Attempt, st.Node))
		}
		if n, ok := recorded[[2]string{st.Run, st.Task}]; ok {
			if a, err := strconv.Atoi(st.Attempt); err != nil || a > n {
				unknown++
				lines = append(lines, fmt.Sprintf("run %s task %s attempt %s started on %s; the run records %d attempts", st.Run, st.Task, st.Attempt, st.Node, n))
			}
		}
	}
	return twice, unknown, lines
}
