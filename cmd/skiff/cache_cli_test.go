package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI_SecondRunIsCachedUnlessNoCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	p := writeFile(t, dir, "p.yaml", `
name: cached
tasks:
  - name: prep
    command: [/bin/sh, -c, 'echo x >> `+count+`; echo 42 > {{outputs.rows}}']
    outputs: {rows: int}
    cache: true
  - name: use
    command: [/bin/sh, -c, 'test {{inputs.rows}} = 42']
    inputs: {rows: {type: int, from: prep.rows}}
`)
	data := filepath.Join(dir, "data")
	for i, args := range [][]string{{}, {}, {"--no-cache"}} {
		r := skiff(t, data, append([]string{"run", p, "-o", "json", "--progress", "plain"}, args...)...)
		if r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
		s := parseSummary(t, r)
		prep := s.Tasks[0]
		wantCached := i == 1
		if prep.Cached != wantCached || (wantCached && prep.Attempts != 0) {
			t.Errorf("run %d: prep cached=%v attempts=%d, want cached=%v", i, prep.Cached, prep.Attempts, wantCached)
		}
		if wantCached && !strings.Contains(r.stderr, "(cached)") {
			t.Errorf("run %d: progress does not show the cached task:\n%s", i, r.stderr)
		}
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "x"); n != 2 {
		t.Errorf("prep executed %d times over three runs, want 2 (the second was cached)", n)
	}
}
