package kfp

import (
	"strings"
	"testing"
)

// TestUnrunnable_WarnsPerExecutor: KFP backend steps (CreatePVC,
// DeletePVC) are warned about for every executor; a step with no command
// (its image's entrypoint) only for the local executor.
func TestUnrunnable_WarnsPerExecutor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file, executor string
		want           []string // "task: words of the message"
	}{
		{"create_mount_delete_dynamic_pvc.yaml", "local", []string{"tasks.createpvc: a KFP backend step (createpvc", "tasks.deletepvc: a KFP backend step (deletepvc"}},
		{"create_mount_delete_dynamic_pvc.yaml", "docker", []string{"tasks.createpvc: a KFP backend step", "tasks.deletepvc: a KFP backend step"}},
		{"pipeline_with_various_io_types.yaml", "", []string{"tasks.downstream: no command", "tasks.upstream: no command"}},
		{"pipeline_with_various_io_types.yaml", "docker", nil},
		{"hello-world.yaml", "local", nil},
	}
	for _, tc := range cases {
		plan, _, err := loadCorpusFile(t, tc.file, Options{Lenient: true})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		got := Unrunnable(plan, tc.executor)
		if len(got) != len(tc.want) {
			t.Errorf("%s with %q: %d warnings %v, want %d", tc.file, tc.executor, len(got), got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i].String(), w) {
				t.Errorf("%s with %q: warning %d = %q, want it to start with %q", tc.file, tc.executor, i, got[i], w)
			}
		}
	}
}
