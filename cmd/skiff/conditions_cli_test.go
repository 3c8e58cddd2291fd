package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

func TestCLI_ConditionsExample(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, score       string
		code              int
		run, deploy, eval string
		upstream          string
	}{
		{"clears the bar", "0.95", 0, "SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"},
		{"below the bar", "0.5", 0, "SUCCEEDED", "SKIPPED", "SUCCEEDED", "SUCCEEDED"},
		{"evaluate fails", "-1", 1, "FAILED", "SKIPPED", "FAILED", "FAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := skiff(t, filepath.Join(t.TempDir(), "data"), "run", "../../examples/conditions/pipeline.yaml",
				"-p", "score="+tc.score, "-o", "json", "--progress", "none")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			s := parseSummary(t, r)
			states := map[string]string{}
			for _, tk := range s.Tasks {
				states[tk.Name] = tk.State
			}
			if s.State != tc.run || states["evaluate"] != tc.eval || states["deploy"] != tc.deploy || states["report"] != "SUCCEEDED" {
				t.Fatalf("run %s, tasks %v", s.State, states)
			}
			if tc.code == 0 {
				var st struct{ State string }
				if err := json.Unmarshal(s.Outputs["status"], &st); err != nil || st.State != tc.upstream {
					t.Errorf("status output %s: %v", s.Outputs["status"], err)
				}
			}
		})
	}
}
