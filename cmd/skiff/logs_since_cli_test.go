package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLI_LogsSince: --since keeps the logs of attempts that ran at or
// after the time given; a duration counts back from now.
func TestCLI_LogsSince(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := writeFile(t, dir, "p.yaml", `name: since
tasks:
  - name: early
    command: [/bin/sh, -c, 'echo from-early']
  - name: late
    after: [early]
    command: [/bin/sh, -c, 'sleep 1; echo from-late']
`)
	r := skiff(t, data, "run", p, "-o", "json", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	var sum struct {
		RunID string `json:"run_id"`
		Tasks []struct {
			Name       string `json:"name"`
			FinishedAt string `json:"finished_at"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || len(sum.Tasks) != 2 {
		t.Fatalf("summary: %v\n%s", err, r.stdout)
	}
	early, err := time.Parse(time.RFC3339Nano, sum.Tasks[0].FinishedAt)
	if err != nil || sum.Tasks[0].Name != "early" {
		t.Fatalf("early task: %+v %v", sum.Tasks[0], err)
	}
	cut := early.Add(time.Millisecond).Format(time.RFC3339Nano)
	if r := skiff(t, data, "logs", sum.RunID[:8], "--since", cut); r.code != 0 || r.stdout != "late: from-late\n" {
		t.Errorf("logs --since %s: exit %d %q %s", cut, r.code, r.stdout, r.stderr)
	}
	if r := skiff(t, data, "logs", sum.RunID[:8], "--since", "1h"); r.stdout != "early: from-early\nlate: from-late\n" {
		t.Errorf("logs --since 1h: %q %s", r.stdout, r.stderr)
	}
	if r := skiff(t, data, "logs", sum.RunID[:8], "early", "--since", cut); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "before --since") {
		t.Errorf("logs TASK --since after it ended: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := skiff(t, data, "logs", sum.RunID[:8], "--since", "yesterday"); r.code != 2 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("logs --since yesterday: exit %d %s", r.code, r.stderr)
	}
}
