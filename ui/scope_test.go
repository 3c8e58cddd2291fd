package ui

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
)

// loopPipeline: a loop whose iterations are a two-step chain with a
// nested loop, on the sim executor.
const loopPipeline = `name: loopy
executor: sim
tasks:
  - name: prep
    command: [echo, prep]
  - name: sweep
    after: [prep]
    parallelFor: {items: [a, b, c], as: x}
    tasks:
      - name: fit
        command: [echo, fit]
      - name: score
        after: [fit]
        command: [echo, score]
      - name: inner
        after: [score]
        parallelFor: {items: [1, 2], as: y}
        tasks:
          - name: leaf
            command: [echo, leaf]
`

func TestRunPage_DrawsALoopIterationAsItsOwnGraph(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit("loopy", loopPipeline)
	if r := h.waitRun(id); r.State != spec.RunSucceeded {
		t.Fatalf("run %v: %s", r.State, r.Error)
	}
	top := h.must(200, "GET", "/runs/"+id, "", "").body
	contains(t, top, ">sweep</text>", "↻ 12 steps · 12 done", `<rect class="st-succeeded" x="`)
	lacks(t, top, ">fit</text>", `class="scopebar"`)

	it := h.must(200, "GET", "/runs/"+id+"?group=1&iter=2", "", "").body
	contains(t, it, ">fit</text>", ">score</text>", ">inner</text>", `class="scopebar"`, "sweep · iteration 2", "of 3",
		`data-scope="group=1&amp;iter=2"`, `rel="prev"`, `item <code>&#34;c&#34;</code>`)
	lacks(t, it, ">prep</text>", `rel="next"`)
	// fit -> score -> inner: two edges
	if n := len(regexp.MustCompile(`<path d="M`).FindAllString(it, -1)); n != 2 {
		t.Fatalf("%d edges in the iteration's graph, want 2", n)
	}
	// a node of the iteration opens its task and keeps the iteration drawn
	href := regexp.MustCompile(`href="(/runs/[^"]*\?task=\d+)"[^>]*data-node="\d+">\s*<rect[^>]*/>\s*<rect[^>]*/>\s*<text[^>]*>score<`).FindStringSubmatch(it)
	if href == nil {
		t.Fatalf("no link to score in:\n%s", it)
	}
	task := h.must(200, "GET", href[1], "", "").body
	contains(t, task, `id="task-panel"`, "sweep · iteration 2", ">fit</text>", "node st-succeeded kind-task selected")
	// the nested loop's iteration sits under both
	inner := regexp.MustCompile(`href="/runs/[^"]*\?group=(\d+)"[^>]*data-node="\d+">\s*<rect[^>]*/>\s*<rect[^>]*/>\s*<text[^>]*>inner<`).FindStringSubmatch(it)
	if inner == nil {
		t.Fatal("no link to the nested loop")
	}
	nested := h.must(200, "GET", "/runs/"+id+"?group="+inner[1]+"&iter=1", "", "").body
	contains(t, nested, "sweep · iteration 2", "inner · iteration 1", ">leaf</text>")

	st := h.must(200, "GET", "/runs/"+id+"/state.json?group=1&iter=2", "", "").body
	contains(t, st, `"state":"SUCCEEDED"`)
	lacks(t, st, `"0":`) // prep is not in the iteration
	h.must(404, "GET", "/runs/"+id+"?group=1&iter=3", "", "")
	h.must(400, "GET", "/runs/"+id+"/state.json?group=1&iter=9", "", "")
}

func TestLoadRun_SharesFinalRunsModelsOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{sim: sim.Config{Tasks: map[string]sim.Behavior{"greet": {Duration: time.Hour}}}})
	u := h.ui
	v := &viewer{Namespace: "*", Role: "admin"}
	live := h.submit("live", simPipeline)
	a, err := u.loadRun(live, v)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := u.loadRun(live, v); a == b {
		t.Fatal("a running run's model was reused: its states would go stale")
	}
	done := h.submit("done", loopPipeline)
	h.waitRun(done)
	a, _ = u.loadRun(done, v)
	if b, _ := u.loadRun(done, v); a != b {
		t.Fatal("a final run's model was read again")
	}
}

// nestedItemsPipeline: an inner loop iterating over the outer loop's item
// (a list), and one over a group input bound to a pipeline parameter.
const nestedItemsPipeline = `name: nested-items
executor: sim
parameters:
  zs: {type: list, default: [x, y]}
tasks:
  - name: outer
    parallelFor: {items: [[1, 2], [3, 4, 5]], as: xs, itemType: list}
    tasks:
      - name: inner
        parallelFor: {items: {param: xs}, as: n, itemType: int}
        tasks:
          - name: leaf
            command: [echo, leaf]
  - name: other
    parallelFor: {items: [a], as: w}
    inputs:
      zs: {type: list, param: zs}
    tasks:
      - name: byparam
        parallelFor: {items: {param: zs}, as: z, itemType: string}
        tasks:
          - name: leaf
            command: [echo, leaf]
`

// TestRunModel_LoopItemsFromNestedLoopParameters: the items of a loop
// nested in another are found through the enclosing iteration: the outer
// loop's item, or a group input traced to a pipeline parameter.
func TestRunModel_LoopItemsFromNestedLoopParameters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit("nested", nestedItemsPipeline)
	if r := h.waitRun(id); r.State != spec.RunSucceeded {
		t.Fatalf("run %v: %s", r.State, r.Error)
	}
	m, err := h.ui.loadRun(id, &viewer{Namespace: "*", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for i, task := range m.tasks {
		if task == nil || m.planTask[i] == nil || m.planTask[i].ParallelFor == nil {
			continue
		}
		var items []string
		for k := 0; ; k++ {
			it, ok := m.loopItem(i, k)
			if !ok {
				break
			}
			items = append(items, it)
		}
		got[task.Name] = strings.Join(items, " ")
	}
	want := map[string]string{
		"outer": "[1,2] [3,4,5]", "outer[0].inner": "1 2", "outer[1].inner": "3 4 5",
		"other": `"a"`, "other[0].byparam": `"x" "y"`,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("items of %s = %q, want %q (all: %v)", name, got[name], w, got)
		}
	}
}
