package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
)

type progressKind int

const (
	progNone progressKind = iota
	progTTY
	progPlain
	progJSON
)

func progressMode(flag, output string) (progressKind, error) {
	switch flag {
	case "auto":
		if term.IsTerminal(int(os.Stderr.Fd())) {
			return progTTY, nil
		}
		return progPlain, nil
	case "tty":
		return progTTY, nil
	case "plain":
		return progPlain, nil
	case "json":
		return progJSON, nil
	case "none":
		return progNone, nil
	}
	return progNone, usageError("--progress: %q is not one of auto, tty, plain, json, none", flag)
}

// progress shows a run's changes as they become durable: a table redrawn
// in place on a terminal, timestamped lines otherwise, or JSON lines.
type progress struct {
	w    io.Writer
	kind progressKind
	plan *spec.Plan // when known, its tasks are shown PENDING from the start
	only string     // when set, other runs' updates are dropped

	mu      sync.Mutex
	queue   []engine.Update
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}

	// Printer state (printer goroutine only).
	start time.Time
	runs  map[string]*runView
	order []string
	drawn int
	// width and height, when set, are the terminal's size (tests).
	width, height int
}

type runView struct {
	id, name string
	state    spec.RunState
	tasks    map[string]*taskView
	order    []string
}

type taskView struct {
	cached  bool
	name    string
	state   spec.TaskState
	attempt int
	since   time.Time
	reason  string
}

func newProgress(w io.Writer, kind progressKind, plan *spec.Plan) *progress {
	return &progress{w: w, kind: kind, plan: plan, wake: make(chan struct{}, 1), done: make(chan struct{}),
		stopped: make(chan struct{}), runs: map[string]*runView{}}
}

// updates is the engine's OnUpdate hook: it queues and never blocks.
func (p *progress) updates(us []engine.Update) {
	if p.kind == progNone {
		return
	}
	p.mu.Lock()
	for _, u := range us {
		if p.only == "" || u.RunID == p.only {
			p.queue = append(p.queue, u)
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *progress) begin(runID string) {
	p.start = time.Now()
	p.mu.Lock()
	p.only = runID
	p.mu.Unlock()
	if p.plan != nil && runID != "" {
		rv := &runView{id: runID, name: p.plan.Name, tasks: map[string]*taskView{}}
		for _, t := range p.plan.Tasks {
			rv.tasks[t.Name] = &taskView{name: t.Name, state: spec.TaskPending}
			rv.order = append(rv.order, t.Name)
		}
		p.runs[runID] = rv
		p.order = append(p.order, runID)
	}
	go p.loop()
}

func (p *progress) end() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	<-p.stopped
}

func (p *progress) loop() {
	defer close(p.stopped)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.wake:
		case <-tick.C:
		case <-p.done:
			p.drain()
			return
		}
		p.drain()
	}
}

func (p *progress) drain() {
	p.mu.Lock()
	q := p.queue
	p.queue = nil
	p.mu.Unlock()
	for _, u := range q {
		switch p.kind {
		case progPlain:
			p.plainLine(u)
		case progJSON:
			p.jsonLine(u)
		}
		p.apply(u)
	}
	if p.kind == progTTY {
		p.redraw()
	}
}

func (p *progress) apply(u engine.Update) {
	rv := p.runs[u.RunID]
	if rv == nil {
		rv = &runView{id: u.RunID, tasks: map[string]*taskView{}}
		p.runs[u.RunID] = rv
		p.order = append(p.order, u.RunID)
	}
	if u.Task < 0 {
		rv.name, rv.state = u.Name, u.RunState
		return
	}
	tv := rv.tasks[u.Name]
	if tv == nil {
		tv = &taskView{name: u.Name}
		rv.tasks[u.Name] = tv
		rv.order = append(rv.order, u.Name)
	}
	tv.state, tv.attempt, tv.since, tv.reason, tv.cached = u.TaskState, u.Attempt, u.Time, u.Reason, u.Cached
}

func (p *progress) plainLine(u engine.Update) {
	ts := u.Time.Local().Format("15:04:05.000")
	if u.Task < 0 {
		line := fmt.Sprintf("%s  run %s  %s", ts, short(u.RunID), u.RunState)
		if u.Reason != "" {
			line += ": " + u.Reason
		}
		fmt.Fprintln(p.w, line)
		return
	}
	state := u.TaskState.String()
	if u.Cached {
		state += " (cached)"
	}
	line := fmt.Sprintf("%s  %-24s %s", ts, u.Name, state)
	if u.Attempt > 1 {
		line += fmt.Sprintf(" (attempt %d)", u.Attempt)
	}
	if u.Reason != "" {
		line += ": " + oneLine(u.Reason)
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) jsonLine(u engine.Update) {
	rec := map[string]any{"time": u.Time.UTC().Format(time.RFC3339Nano), "run_id": u.RunID}
	if u.Task < 0 {
		rec["run_state"] = u.RunState.String()
	} else {
		rec["task"], rec["state"], rec["attempt"] = u.Name, u.TaskState.String(), u.Attempt
		if u.Cached {
			rec["cached"] = true
		}
	}
	if u.Reason != "" {
		rec["reason"] = u.Reason
	}
	b, _ := json.Marshal(rec)
	fmt.Fprintln(p.w, string(b))
}

var stateMark = map[spec.TaskState]string{
	spec.TaskPending: "·", spec.TaskRunning: "▶", spec.TaskSucceeded: "✔",
	spec.TaskFailed: "✘", spec.TaskSkipped: "↷", spec.TaskCanceled: "■",
}

// redraw paints the view in place: one line per run, then its tasks with
// each loop folded into one line of counts (its failed tasks listed under
// it), nested tasks indented. It never draws more lines than the terminal
// has, nor lines wider than it, so that it can move back over them.
func (p *progress) redraw() {
	width, height := p.size()
	budget := height - 1
	var lines []string
	for _, id := range p.order {
		rv := p.runs[id]
		lines = append(lines, fmt.Sprintf("run %s  %s  %s  %s", short(rv.id), rv.name, rv.state,
			time.Since(p.start).Round(100*time.Millisecond)))
		lines = append(lines, p.taskLines(rv, budget-len(lines))...)
	}
	if len(lines) > budget {
		lines = append(lines[:budget-1], fmt.Sprintf("… %d more lines", len(lines)-budget+1))
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K")
		b.WriteString(trim(l, width-1))
		b.WriteByte('\n')
	}
	for i := len(lines); i < p.drawn; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if len(lines) > p.drawn {
		p.drawn = len(lines)
	}
	io.WriteString(p.w, b.String())
}

// size is the terminal's width and height (80×24 when unknown).
func (p *progress) size() (int, int) {
	if p.width > 0 && p.height > 0 {
		return p.width, p.height
	}
	if f, ok := p.w.(*os.File); ok {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 10 && h > 3 {
			return w, h
		}
	}
	return 80, 24
}

// taskLines draws a run's tasks in at most room lines: when they do not
// fit, running and failed ones first, then a line of counts.
func (p *progress) taskLines(rv *runView, room int) []string {
	kept, folds := foldLoops(rv.order, func(n string) string { return viewState(rv.tasks[n]) })
	type row struct {
		text string
		rank int
	}
	var rows []row
	for _, n := range kept {
		tv := rv.tasks[n]
		indent := strings.Repeat("  ", strings.Count(n, "."))
		if f := folds[n]; f != nil {
			rows = append(rows, row{fmt.Sprintf("  %s⟳ %s  %s  %s", indent, trim(n, 28), viewState(tv), f.text()), rank(tv.state)})
			for _, l := range f.failedLines("    " + indent) {
				rows = append(rows, row{l, 1})
			}
			continue
		}
		mark, state := stateMark[tv.state], viewState(tv)
		switch state {
		case "CACHED":
			mark = "≡"
		case "RETRYING":
			mark = "↻"
		}
		line := fmt.Sprintf("  %s%s %-28s %-9s", indent, mark, trim(n, 28), state)
		if tv.attempt > 1 {
			line += fmt.Sprintf(" attempt %d", tv.attempt)
		}
		if tv.state == spec.TaskRunning {
			line += " " + time.Since(tv.since).Round(time.Second).String()
		} else if tv.reason != "" {
			line += " " + oneLine(tv.reason)
		}
		rows = append(rows, row{line, rank(tv.state)})
	}
	if len(rows) <= room || room < 2 {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = r.text
		}
		return out
	}
	// Keep the most telling rows, in their order, and count the rest.
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rows[idx[a]].rank < rows[idx[b]].rank })
	keep := idx[:room-1]
	sort.Ints(keep)
	out := make([]string, 0, room)
	for _, i := range keep {
		out = append(out, rows[i].text)
	}
	counts := map[string]int{}
	for _, tv := range rv.tasks {
		counts[viewState(tv)]++
	}
	var parts []string
	for _, s := range foldOrder {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(s)))
		}
	}
	return append(out, fmt.Sprintf("  … %d tasks: %s", len(rv.tasks), strings.Join(parts, ", ")))
}

// viewState is a task's state as the view names it.
func viewState(tv *taskView) string {
	switch {
	case tv.cached:
		return "CACHED"
	case tv.state == spec.TaskPending && tv.attempt > 0:
		return "RETRYING"
	}
	return tv.state.String()
}

func rank(s spec.TaskState) int {
	switch s {
	case spec.TaskRunning:
		return 0
	case spec.TaskFailed:
		return 1
	}
	return 2
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func trim(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
