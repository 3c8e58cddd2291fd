package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI_RunsRetryOnTheEmbeddedNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ready")
	p := writeFile(t, dir, "p.yaml", `
name: retryable
tasks:
  - name: first
    command: [/bin/sh, -c, 'echo run >> `+filepath.Join(dir, "first.count")+`']
  - name: gate
    command: [/bin/sh, -c, 'test -f `+marker+`']
    after: [first]
  - name: after
    command: [/bin/true]
    after: [gate]
`)
	data := filepath.Join(dir, "data")
	r := skiff(t, data, "run", p, "-o", "json", "--progress", "none")
	s := parseSummary(t, r)
	if r.code != 1 || s.State != "FAILED" {
		t.Fatalf("first run: exit %d, %s\n%s", r.code, s.State, r.stderr)
	}
	writeFile(t, dir, "ready", "")
	rr := skiff(t, data, "runs", "retry", s.RunID[:8], "--progress", "none")
	if rr.code != 0 || !strings.Contains(rr.stderr, "SUCCEEDED") {
		t.Fatalf("retry: exit %d\n%s", rr.code, rr.stderr)
	}
	if again := skiff(t, data, "runs", "retry", s.RunID); again.code != 2 {
		t.Fatalf("retry of a succeeded run: exit %d, want 2\n%s", again.code, again.stderr)
	}
	get := skiff(t, data, "runs", "get", s.RunID, "-o", "json")
	g := parseSummary(t, get)
	want := map[string]int{"first": 1, "gate": 2, "after": 1}
	for _, tk := range g.Tasks {
		if tk.State != "SUCCEEDED" || tk.Attempts != want[tk.Name] {
			t.Errorf("task %s: %s with %d attempts, want SUCCEEDED with %d", tk.Name, tk.State, tk.Attempts, want[tk.Name])
		}
	}
	if b := readFileT(t, filepath.Join(dir, "first.count")); b != "run\n" {
		t.Errorf("first ran %q times; it must not run again", b)
	}
}

func readFileT(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
