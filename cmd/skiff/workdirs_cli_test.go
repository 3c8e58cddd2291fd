package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_WorkDirsRemovedUnlessKept: after `skiff run`, the executions'
// work dirs and logs are gone (their outputs and logs are stored, and
// `skiff logs` still shows them); --keep-work-dirs keeps them.
func TestCLI_WorkDirsRemovedUnlessKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", shellPipeline)
	for _, keep := range []bool{false, true} {
		data := filepath.Join(dir, "data")
		if keep {
			data += "-kept"
		}
		args := []string{"run", p, "-o", "json", "--progress", "none"}
		if keep {
			args = append(args, "--keep-work-dirs")
		}
		r := skiff(t, data, args...)
		if r.code != 0 {
			t.Fatalf("keep %v: exit %d\n%s", keep, r.code, r.stderr)
		}
		s := parseSummary(t, r)
		entries, err := os.ReadDir(filepath.Join(data, "work"))
		if err != nil {
			t.Fatal(err)
		}
		var roots []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				roots = append(roots, e.Name())
			}
		}
		logs, _ := os.ReadDir(filepath.Join(data, "work", ".logs"))
		switch {
		case !keep && (len(roots) != 0 || len(logs) != 0):
			t.Errorf("work dirs %v and logs %d left after the run", roots, len(logs))
		case keep && (len(roots) != 2 || len(logs) != 2):
			t.Errorf("--keep-work-dirs: work dirs %v and %d logs; want 2 of each", roots, len(logs))
		}
		if l := skiff(t, data, "logs", s.RunID[:8], "make"); l.code != 0 || !strings.Contains(l.stdout, "made it") {
			t.Errorf("keep %v: logs: exit %d, stdout %q, stderr %q", keep, l.code, l.stdout, l.stderr)
		}
	}
}
