package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestCLI_RunsCompareShowsMetricsAndDifferences: runs compare prints the
// numbers of the runs' Metrics artifacts beside their parameters, and
// --diff keeps only the rows where the runs differ.
func TestCLI_RunsCompareShowsMetricsAndDifferences(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := dir + "/data"
	p := writeFile(t, dir, "m.yaml", `name: m
executor: local
parameters:
  lr: {type: float, default: 0.1}
  seed: {type: int, default: 1}
tasks:
  - name: fit
    command: [/bin/sh, -c, 'printf "{\"acc\": %s, \"rows\": 3, \"labels\": [\"a\"]}" "$1" > "$2"', fit]
    args: ["{{inputs.lr}}", "{{outputs.m}}"]
    inputs:
      lr: {type: float, param: lr}
    outputs:
      m: Metrics
`)
	var ids []string
	for _, lr := range []string{"0.25", "0.5"} {
		r := skiff(t, data, "run", p, "-p", "lr="+lr, "-o", "name", "--progress", "none")
		if r.code != 0 {
			t.Fatalf("run: exit %d %s", r.code, r.stderr)
		}
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	all := skiff(t, data, append([]string{"runs", "compare"}, ids...)...)
	if all.code != 0 {
		t.Fatalf("runs compare: exit %d %s", all.code, all.stderr)
	}
	for _, want := range []string{`metric\s+fit\.m\.acc\s+0\.25\s+0\.5`, `metric\s+fit\.m\.rows\s+3\s+3`, `parameter\s+seed\s+1\s+1`} {
		if !regexp.MustCompile(want).MatchString(all.stdout) {
			t.Errorf("runs compare lacks %s:\n%s", want, all.stdout)
		}
	}
	if strings.Contains(all.stdout, "labels") {
		t.Errorf("runs compare shows a list's items as metrics:\n%s", all.stdout)
	}
	diff := skiff(t, data, append([]string{"runs", "compare", "--diff"}, ids...)...)
	if diff.code != 0 || !strings.Contains(diff.stdout, "fit.m.acc") || !strings.Contains(diff.stdout, "lr") ||
		strings.Contains(diff.stdout, "fit.m.rows") || strings.Contains(diff.stdout, "seed") {
		t.Errorf("runs compare --diff: exit %d\n%s%s", diff.code, diff.stdout, diff.stderr)
	}
}
