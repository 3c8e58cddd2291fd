package executors

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveExecution_EveryLayout: an execution's root and log go, what
// ever the step left in the root (nothing, files in tmp/ and outputs/,
// nested directories, a link named like a layout directory); a link is
// removed, never followed, so what it points at stays.
func TestRemoveExecution_EveryLayout(t *testing.T) {
	mk := func(t *testing.T, p string) {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(t *testing.T, p string) {
		t.Helper()
		mk(t, filepath.Dir(p))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]func(t *testing.T, root, outside string){
		"empty layout": func(t *testing.T, root, _ string) {
			mk(t, filepath.Join(root, TmpDir))
			mk(t, filepath.Join(root, OutputsDir))
		},
		"root only": func(t *testing.T, root, _ string) { mk(t, root) },
		"no root":   func(t *testing.T, root, _ string) {},
		"files": func(t *testing.T, root, _ string) {
			write(t, filepath.Join(root, TmpDir, "scratch"))
			write(t, filepath.Join(root, OutputsDir, "model", "weights.bin"))
			write(t, filepath.Join(root, InputsDir, "data", "a.csv"))
			write(t, filepath.Join(root, "stray"))
		},
		"link named tmp": func(t *testing.T, root, outside string) {
			mk(t, root)
			if err := os.Symlink(outside, filepath.Join(root, TmpDir)); err != nil {
				t.Fatal(err)
			}
		},
		"link inside outputs": func(t *testing.T, root, outside string) {
			mk(t, filepath.Join(root, OutputsDir))
			if err := os.Symlink(outside, filepath.Join(root, OutputsDir, "escape")); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			work, outside := t.TempDir(), t.TempDir()
			write(t, filepath.Join(outside, "keep"))
			if err := PrepareWorkDir(work); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(work, "run-1-1")
			setup(t, root, outside)
			write(t, LogPath(work, "run-1-1"))
			if err := RemoveExecution(work, "run-1-1"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(root); !os.IsNotExist(err) {
				t.Errorf("root still there: %v", err)
			}
			if _, err := os.Lstat(LogPath(work, "run-1-1")); !os.IsNotExist(err) {
				t.Errorf("log still there: %v", err)
			}
			if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
				t.Errorf("a link was followed: %v", err)
			}
		})
	}
}

// TestExecutionID_Form: run id, task index and attempt, dash-separated
// (stored records and pod names are made from it: it must not change).
func TestExecutionID_Form(t *testing.T) {
	if got := ExecutionID("0b7e-4f", 12, 3); got != "0b7e-4f-12-3" {
		t.Fatalf("ExecutionID = %q", got)
	}
}
