package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_RunLabelsAndSelector: skiff run -l labels a run; runs list -l
// selects by label; -o wide and runs get show the labels; a bad label or
// selector exits 2 naming the flag and creates nothing.
func TestCLI_RunLabelsAndSelector(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := writeFile(t, dir, "p.yaml", "name: lab\ntasks:\n  - name: a\n    command: [/bin/true]\n")
	var ids []string
	for _, labels := range [][]string{{"-l", "team=vision", "-l", "stage=dev"}, {"--label", "team=nlp"}} {
		r := skiff(t, data, append([]string{"run", p, "-o", "name", "--progress", "none"}, labels...)...)
		if r.code != 0 {
			t.Fatalf("run %v: exit %d %s", labels, r.code, r.stderr)
		}
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	for sel, want := range map[string]string{
		"team=vision":        ids[0] + "\n",
		"team!=vision":       ids[1] + "\n",
		"stage":              ids[0] + "\n",
		"team=nlp,stage=dev": "",
		"!stage":             ids[1] + "\n",
	} {
		if r := skiff(t, data, "runs", "list", "-l", sel, "-o", "name"); r.code != 0 || r.stdout != want {
			t.Errorf("runs list -l %q: exit %d %q, want %q %s", sel, r.code, r.stdout, want, r.stderr)
		}
	}
	if r := skiff(t, data, "runs", "list", "-o", "wide"); !strings.Contains(r.stdout, "LABELS") || !strings.Contains(r.stdout, "stage=dev,team=vision") {
		t.Errorf("runs list -o wide shows no labels:\n%s", r.stdout)
	}
	if r := skiff(t, data, "runs", "get", ids[0][:8]); !strings.Contains(r.stdout, "Labels:     stage=dev,team=vision") {
		t.Errorf("runs get shows no labels:\n%s", r.stdout)
	}
	if r := skiff(t, data, "runs", "list", "--selector", "team=a b"); r.code != 2 || !strings.Contains(r.stderr, "--selector") {
		t.Errorf("bad selector: exit %d %s", r.code, r.stderr)
	}
	if r := skiff(t, data, "run", p, "-l", "team"); r.code != 2 || !strings.Contains(r.stderr, `--label "team": expected key=value`) {
		t.Errorf("bad label: exit %d %s", r.code, r.stderr)
	}
	if r := skiff(t, data, "runs", "list", "-o", "name"); strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("a bad label created a run:\n%s", r.stdout)
	}
}
