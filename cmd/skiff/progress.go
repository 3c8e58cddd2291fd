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
	start  time.Time
	runs   map[string]*runView
	order  []string
	drawn  int
	maxRow int
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
		stopped: make(chan struct{}), runs: map[string]*runView{}, maxRow: 25}
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

// redraw paints the view in place: one line per run, then its tasks (the
// most recent ones when there are many), then counts.
func (p *progress) redraw() {
	var lines []string
	for _, id := range p.order {
		rv := p.runs[id]
		counts := map[spec.TaskState]int{}
		for _, tv := range rv.tasks {
			counts[tv.state]++
		}
		lines = append(lines, fmt.Sprintf("run %s  %s  %s  %s", short(rv.id), rv.name, rv.state,
			time.Since(p.start).Round(100*time.Millisecond)))
		names := rv.order
		if len(names) > p.maxRow {
			// Show running and failed tasks first, then the latest.
			names = append([]string(nil), names...)
			sort.SliceStable(names, func(i, j int) bool {
				return rank(rv.tasks[names[i]].state) < rank(rv.tasks[names[j]].state)
			})
			names = names[:p.maxRow]
		}
		for _, n := range names {
			tv := rv.tasks[n]
			mark, state := stateMark[tv.state], tv.state.String()
			switch {
			case tv.cached:
				mark, state = "≡", "CACHED"
			case tv.state == spec.TaskPending && tv.attempt > 0:
				mark, state = "↻", "RETRYING"
			}
			line := fmt.Sprintf("  %s %-28s %-9s", mark, trim(tv.name, 28), state)
			if tv.attempt > 1 {
				line += fmt.Sprintf(" attempt %d", tv.attempt)
			}
			if tv.state == spec.TaskRunning {
				line += " " + time.Since(tv.since).Round(time.Second).String()
			} else if tv.reason != "" {
				line += " " + trim(oneLine(tv.reason), 60)
			}
			lines = append(lines, line)
		}
		if len(rv.order) > p.maxRow {
			lines = append(lines, fmt.Sprintf("  … %d tasks: %d running, %d succeeded, %d failed, %d skipped",
				len(rv.order), counts[spec.TaskRunning], counts[spec.TaskSucceeded], counts[spec.TaskFailed], counts[spec.TaskSkipped]))
		}
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K")
		b.WriteString(l)
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
