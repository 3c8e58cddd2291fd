package ui

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/scheduler"
	"github.com/skiffml/skiff/store"
)

// waitReason says why task i of a running run has not started, from what
// the store holds: the reason its executor gave, when the task record
// holds one (recordedWaitReason); else, for a PENDING task, the
// dependencies it waits for, its loop's parallelism limit, a retry
// backoff, or none of these (then it is ready and waits for its executor
// to take it). "" when the task is not waiting.
func (m *runModel) waitReason(i int, now time.Time) string {
	t := m.tasks[i]
	if t == nil || t.State.Final() || m.run.State.Final() {
		return ""
	}
	if r := recordedWaitReason(t); r != "" {
		return "Its executor says it waits: " + r + "."
	}
	if t.State != spec.TaskPending {
		return ""
	}
	if m.run.State == spec.RunPending {
		return "The run has not started yet."
	}
	if m.run.CancelRequested {
		return "The run is being canceled: this task will not start."
	}
	var open, failed []string
	for _, d := range m.deps(i) {
		dt := m.tasks[d]
		switch {
		case dt == nil || !dt.State.Final():
			open = append(open, fmt.Sprintf("%s (%s)", m.shortName(d), strings.ToLower(taskState(dt))))
		case dt.State != spec.TaskSucceeded && dt.State != spec.TaskSkipped:
			failed = append(failed, m.shortName(d))
		}
	}
	if len(open) > 0 {
		return "Waits for its dependencies: " + joinSome(open, 5) + "."
	}
	if len(failed) > 0 && (m.planTask[i] == nil || !m.planTask[i].IgnoreUpstreamFailure) {
		return "Upstream " + joinSome(failed, 5) + " did not succeed: this task will be skipped."
	}
	if p, ok := m.place[i]; ok && p.x.Loop {
		if lim := m.parallelism(p.x.Task); lim > 0 {
			if busy := m.activeBefore(p.x, p.k); busy >= lim {
				return fmt.Sprintf("Waits for the loop's parallelism limit: %s runs at most %d iterations at once, and %d earlier ones are not done.",
					m.shortName(p.x.Task), lim, busy)
			}
		}
	}
	if n := len(t.Attempts); n > 0 {
		last := t.Attempts[n-1]
		msg := fmt.Sprintf("Attempt %d failed (%s); waits to retry", n, cmp.Or(last.Error, "no reason given"))
		if pt := m.planTask[i]; pt != nil {
			if d, ok := scheduler.RetryDelay(pt.Retry, n); ok && !last.FinishedAt.IsZero() {
				at := last.FinishedAt.Add(d)
				if left := at.Sub(now); left > 0 {
					msg += fmt.Sprintf(" in %s (backoff %s)", formatDuration(left), formatDuration(d))
				} else {
					msg += fmt.Sprintf(" (backoff %s, due)", formatDuration(d))
				}
			}
		}
		return msg + "."
	}
	exec := m.executor(i)
	return fmt.Sprintf("Ready: its dependencies are done; it waits for capacity on executor %q (the engine starts it as soon as the executor takes it).", exec)
}

// deps are the task indices task i waits for: plan indices at the top
// level, the same iteration's siblings inside a group.
func (m *runModel) deps(i int) []int {
	pt := m.planTask[i]
	if pt == nil {
		return nil
	}
	p, nested := m.place[i]
	if !nested {
		return pt.Deps
	}
	body := m.planTask[p.x.Task]
	if body == nil || body.Body == nil {
		return nil
	}
	var out []int
	for _, d := range pt.Deps {
		if d < 0 || d >= len(body.Body.Tasks) {
			continue
		}
		if j := indexOf(p.x.Names, body.Body.Tasks[d].Name); j >= 0 {
			out = append(out, p.x.Base+p.k*len(p.x.Names)+j)
		}
	}
	return out
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// parallelism is loop g's limit on active iterations (0 = none).
func (m *runModel) parallelism(g int) int {
	if pt := m.planTask[g]; pt != nil && pt.ParallelFor != nil {
		return pt.ParallelFor.Parallelism
	}
	return 0
}

// activeBefore counts the iterations before k of expansion x that are not
// complete: the scheduler activates iterations in order, so iteration k
// waits while as many as the limit are.
func (m *runModel) activeBefore(x store.Expansion, k int) int {
	n := 0
	for kk := range k {
		for j := range x.Names {
			if t := m.tasks[x.Base+kk*len(x.Names)+j]; t == nil || !t.State.Final() {
				n++
				break
			}
		}
	}
	return n
}

// executor is the executor task i runs on.
func (m *runModel) executor(i int) string {
	if pt := m.planTask[i]; pt != nil && pt.Executor != "" {
		return pt.Executor
	}
	if m.plan.Executor != "" {
		return m.plan.Executor
	}
	return "default"
}

// shortName is task i's name within its iteration.
func (m *runModel) shortName(i int) string {
	if pt := m.planTask[i]; pt != nil {
		if p, ok := m.place[i]; ok && p.x.Loop {
			return fmt.Sprintf("%s[%d]", pt.Name, p.k)
		}
		return pt.Name
	}
	if t := m.tasks[i]; t != nil {
		return t.Name
	}
	return fmt.Sprint(i)
}

func joinSome(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(xs[:n], ", "), len(xs)-n)
}

// loopItem is the item iteration k of loop g runs with, when the page
// can tell: a literal list, a run parameter (top level) or a top-level
// task's list output. Items behind a field selection or a nested loop's
// parameters are not resolved.
func (m *runModel) loopItem(g, k int) (string, bool) {
	items, ok := m.loopItems(g, 0)
	if !ok || k < 0 || k >= len(items) {
		return "", false
	}
	return shortJSON(items[k]), true
}

// maxParamDepth bounds how many enclosing groups a parameter is traced
// through.
const maxParamDepth = 32

// loopItems is the list loop g iterates over, when the store tells it: a
// literal, a parameter (of the pipeline, or of the body g sits in: an
// outer loop's item or a group input, traced outwards) or an upstream
// task's output.
func (m *runModel) loopItems(g, depth int) ([]json.RawMessage, bool) {
	pt := m.planTask[g]
	if pt == nil || pt.ParallelFor == nil || pt.ParallelFor.Items.Field != "" {
		return nil, false
	}
	in := pt.ParallelFor.Items
	var list json.RawMessage
	switch {
	case len(in.Value) > 0:
		list = in.Value
	case in.Param != "":
		list, _ = m.paramValue(g, in.Param, depth)
	case in.From != nil:
		if up, ok := m.upstream(g, in.From); ok && m.tasks[up] != nil {
			list = m.tasks[up].Outputs[in.From.Output].Param
		}
	}
	var items []json.RawMessage
	if json.Unmarshal(list, &items) != nil {
		return nil, false
	}
	return items, true
}

// paramValue is the value of parameter param as task i sees it: a
// pipeline parameter at the top level; inside a group's instance, that
// group's loop item or input of that name.
func (m *runModel) paramValue(i int, param string, depth int) (json.RawMessage, bool) {
	if depth > maxParamDepth {
		return nil, false
	}
	p, nested := m.place[i]
	if !nested {
		v := m.run.Params[param]
		if prm := m.plan.Param(param); len(v) == 0 && prm != nil {
			v = prm.Default
		}
		return v, len(v) > 0
	}
	g := p.x.Task
	gt := m.planTask[g]
	if gt == nil {
		return nil, false
	}
	if gt.ParallelFor != nil && gt.ParallelFor.ItemParam == param {
		items, ok := m.loopItems(g, depth+1)
		if !ok || p.k < 0 || p.k >= len(items) {
			return nil, false
		}
		return items[p.k], true
	}
	for _, in := range gt.Inputs {
		if in.Name != param || in.Field != "" {
			continue
		}
		switch {
		case len(in.Value) > 0:
			return in.Value, true
		case in.Param != "":
			return m.paramValue(g, in.Param, depth+1)
		case in.From != nil:
			if up, ok := m.upstream(g, in.From); ok && m.tasks[up] != nil {
				v := m.tasks[up].Outputs[in.From.Output].Param
				return v, len(v) > 0
			}
		}
	}
	return nil, false
}

// waitReasonKeys are the names under which a task record (or its last
// attempt) may carry the reason its executor gave for not running it yet
// (executors.EventWaiting, e.g. "0/3 nodes: Insufficient nvidia.com/gpu").
// The UI looks them up in the record's JSON so that it shows the reason
// as soon as the engine records one, without naming a Go field that the
// store may not have.
var waitReasonKeys = []string{"waiting_reason", "waiting", "wait_reason"}

// recordedWaitReason is the executor's waiting reason recorded on t or on
// its last attempt, "" when there is none.
func recordedWaitReason(t *store.Task) string {
	if r := stringField(t, waitReasonKeys); r != "" || len(t.Attempts) == 0 {
		return r
	}
	last := t.Attempts[len(t.Attempts)-1]
	if last.State.Final() {
		return ""
	}
	return stringField(last, waitReasonKeys)
}

// stringField is the first non-empty string among keys of v's JSON object.
func stringField(v any, keys []string) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	for _, k := range keys {
		var s string
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) != "" {
			return truncate(strings.Join(strings.Fields(s), " "), 300)
		}
	}
	return ""
}
