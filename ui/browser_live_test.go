package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
)

// chattyPipeline prints a line every 250 ms for 3 s, and a second step
// waits for it.
const chattyPipeline = `name: chatty
executor: local
tasks:
  - name: talk
    command: [/bin/sh, -c, 'for i in $(seq 1 12); do echo "line-$i"; sleep 0.25; done']
  - name: report
    after: [talk]
    command: [echo, done]
`

// bigLoopPipeline runs 10,000 iterations on the sim executor.
const bigLoopPipeline = `name: big-sweep
executor: sim
parameters:
  xs: {type: list}
tasks:
  - name: prep
    command: [echo, prep]
  - name: sweep
    after: [prep]
    parallelFor: {items: {param: xs}, as: x, itemType: int}
    tasks:
      - name: train
        command: [echo, "{{inputs.x}}"]
        inputs: {x: {param: x, type: int}}
  - name: pick
    after: [sweep]
    command: [echo, pick]
`

func TestBrowser_LogFollowsAndATenThousandIterationRunRendersInASecond(t *testing.T) {
	ctx := browser(t)
	// one train in 500 fails (the loop's page shows failures); prep never
	// does: the draw hashes the execution id, which holds the run's random
	// id, so a failing prep (one run in 500) would leave no loop to render
	h := newHarness(t, harnessOpts{sim: sim.Config{
		Default: sim.Behavior{FailRate: 0.002},
		Tasks:   map[string]sim.Behavior{"prep": {}},
		Seed:    7,
	}})

	// the big run works while the log is watched
	xs := make([]int, 10000)
	for i := range xs {
		xs[i] = i
	}
	big := h.submitWith("big-sweep", bigLoopPipeline, map[string]any{"xs": xs})

	// a log follows while its task runs, without a reload
	live := h.submit("chatty", chattyPipeline)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if tk, err := h.st.Task(live, 0); err == nil && tk.State == spec.TaskRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("talk did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	logText := `document.getElementById('log').textContent`
	var early, status string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(h.srv.URL+"/runs/"+live+"?task=0"),
		chromedp.Evaluate(`window.__marker = 1`, nil),
		chromedp.Poll(logText+`.includes('line-1')`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(logText, &early),
		chromedp.Text(`#log-status`, &status),
	); err != nil {
		t.Fatalf("the log did not show the first line: %v", err)
	}
	if strings.Contains(early, "line-12") {
		t.Fatalf("the task had ended when the page showed its log: %q", early)
	}
	shot(t, ctx, "run-log-following")
	var marker bool
	if err := chromedp.Run(ctx,
		chromedp.Poll(logText+`.includes('line-12')`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(`window.__marker === 1`, &marker),
	); err != nil {
		t.Fatalf("the log did not follow to the last line (status %q, first %q): %v", status, early, err)
	}
	if !marker {
		t.Fatal("the page reloaded to show the log")
	}
	t.Logf("log: first view %d lines (status %q), then followed to line-12", strings.Count(early, "line-"), status)

	// a 10,000-iteration loop: the run page and the loop's page render in
	// under a second, from navigation start to the DAG's frame
	run := h.waitRunWithin(big, 120*time.Second)
	if n := len(run.Expansions); n == 0 || run.Expansions[0].Count != 10000 {
		t.Fatalf("the loop did not expand to 10,000: %+v (run %s: %s)", run.Expansions, run.State, run.Error)
	}
	timing := `(() => {
	  const m = performance.getEntriesByName("skiff:dag-drawn")[0];
	  const nav = performance.getEntriesByType("navigation")[0];
	  return JSON.stringify({dag: m ? m.startTime : -1, response: nav.responseEnd, dcl: nav.domContentLoadedEventEnd});
	})()`
	// the score runs work while the big pages are timed
	var ids []string
	for _, p := range []map[string]any{{"acc": 0.62, "lr": 0.3, "loss": 0.9}, {"acc": 0.91, "lr": 0.01, "loss": 0.22}, {"acc": 0.78, "lr": 0.1, "loss": 0.5}} {
		ids = append(ids, h.submitWith(fmt.Sprint("lr=", p["lr"]), scorePipeline, p))
	}
	// a first load warms the browser's caches (the UI's scripts and
	// styles) and the server's (the final run's model); then each page
	// gets up to three tries, on a machine other tests load too
	if err := chromedp.Run(ctx, chromedp.Navigate(h.srv.URL+"/runs/"+big), chromedp.WaitVisible(`#dag`)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, path, wait string }{
		{"run-10k", "/runs/" + big, `#dag [data-node="1"]`},
		{"run-10k-loop", "/runs/" + big + "?group=1", `#group-panel`},
	} {
		var times []string
		best := math.Inf(1)
		for try := 0; try < 3 && best > 1000; try++ {
			var raw string
			if err := chromedp.Run(ctx,
				chromedp.Navigate(h.srv.URL+p.path),
				chromedp.WaitVisible(p.wait),
				chromedp.Poll(`performance.getEntriesByName("skiff:dag-drawn").length > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Evaluate(timing, &raw),
			); err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			var tm struct{ DAG, Response float64 }
			if err := json.Unmarshal([]byte(raw), &tm); err != nil {
				t.Fatal(err)
			}
			times = append(times, fmt.Sprintf("response %.0f ms, DAG drawn %.0f ms", tm.Response, tm.DAG))
			best = min(best, tm.DAG)
		}
		t.Logf("%s: %s", p.name, strings.Join(times, "; "))
		if best > 1000 {
			t.Errorf("%s: the DAG was drawn %.0f ms after navigation start at best, want under 1 s", p.name, best)
		}
		shot(t, ctx, p.name)
	}
	// the other new views, for the screenshots: a failed iteration's own
	// graph, Compare's charts, a pipeline's preview
	for _, id := range ids {
		h.waitRun(id)
	}
	b, _ := json.Marshal(map[string]any{"pipeline": map[string]any{"display_name": "loopy"},
		"pipeline_version": map[string]any{"display_name": "v1", "pipeline_spec": loopPipeline}})
	var pl struct {
		ID string `json:"pipeline_id"`
	}
	_ = json.Unmarshal([]byte(h.must(200, "POST", "/apis/v2beta1/pipelines/create", "", string(b), "Content-Type", "application/json").body), &pl)
	failedIter := run.Expansions[0].Base // the first iteration whose train failed
	for i := run.Expansions[0].Base; i < run.TaskCount; i++ {
		if tk, err := h.st.Task(big, i); err == nil && tk.State == spec.TaskFailed {
			failedIter = i
			break
		}
	}
	for _, p := range []struct{ name, path, wait string }{
		{"run-10k-failed-iteration", fmt.Sprintf("/runs/%s?task=%d", big, failedIter), `.scopebar`},
		{"compare-charts", "/compare?runs=" + strings.Join(ids, ","), `svg.parallel`},
		{"runs-metric-columns", "/runs?metrics=accuracy,loss&params=lr&sort=-metric:accuracy", `table.runs`},
		{"pipeline-preview", "/pipelines/" + pl.ID, `#dag.preview`},
	} {
		if err := chromedp.Run(ctx, chromedp.Navigate(h.srv.URL+p.path), chromedp.WaitVisible(p.wait)); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		shot(t, ctx, p.name)
	}

	var counts string
	if err := chromedp.Run(ctx, chromedp.Navigate(h.srv.URL+"/runs/"+big+"?group=1"), chromedp.TextContent(`#group-panel .chips`, &counts)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(counts, "succeeded") {
		t.Fatalf("loop counts %q", counts)
	}
}
