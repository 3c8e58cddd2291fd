package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
)

// TestProgress_FoldsLoopsAndFitsTheTerminal: a 500-iteration loop is one
// line of counts with its failed iterations under it, and every frame fits
// 80×24, so that the next one is drawn over it.
func TestProgress_FoldsLoopsAndFitsTheTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, progTTY, nil)
	p.width, p.height = 80, 24
	p.start = time.Now()
	apply := func(name string, st spec.TaskState, reason string) {
		p.apply(engine.Update{RunID: "r-0123456789", Task: 1, Name: name, TaskState: st, Reason: reason, Time: time.Now()})
	}
	apply("prepare", spec.TaskSucceeded, "")
	apply("sweep", spec.TaskRunning, "RUNNING: 500 iterations")
	for i := range 500 {
		st := spec.TaskSucceeded
		switch {
		case i%100 == 7:
			st = spec.TaskFailed
		case i >= 490:
			st = spec.TaskRunning
		}
		apply(fmt.Sprintf("sweep[%d].train", i), st, strings.Repeat("a long reason ", 20))
	}
	for i := range 40 {
		apply(fmt.Sprintf("after-%d", i), spec.TaskPending, "")
	}
	p.redraw()
	first := buf.String()
	buf.Reset()
	p.redraw()
	second := buf.String()

	lines := strings.Split(strings.TrimSuffix(first, "\n"), "\n")
	if len(lines) > 23 {
		t.Errorf("frame of %d lines, want at most 23 on a 24-line terminal", len(lines))
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(strings.TrimPrefix(l, "\x1b[2K")); n > 79 {
			t.Errorf("line of %d columns on an 80-column terminal: %q", n, l)
		}
	}
	if !strings.Contains(first, "500 iterations: 10 running, 485 succeeded, 5 failed") {
		t.Errorf("loop not folded into its counts:\n%s", first)
	}
	if !strings.Contains(first, "✘ sweep[7].train") || !strings.Contains(first, "… and 2 more failed") {
		t.Errorf("failed iterations not listed under the loop:\n%s", first)
	}
	if want := fmt.Sprintf("\x1b[%dA", len(lines)); !strings.HasPrefix(second, want) {
		t.Errorf("second frame starts %q, want to move up %d lines", second[:min(12, len(second))], len(lines))
	}
}

// TestOneLine_KeepsTheWholeMessage: a long error is put on one line, not
// cut ("more than the nod...").
func TestOneLine_KeepsTheWholeMessage(t *testing.T) {
	msg := "tasks[0].resources.gpu: 4 GPUs requested, more than the node has (2: 0,1);\n" + strings.Repeat("detail ", 30) + "end"
	got := oneLine(msg)
	if strings.Contains(got, "\n") || !strings.HasSuffix(got, "detail end") || !strings.Contains(got, "more than the node has") {
		t.Errorf("oneLine = %q", got)
	}
}
