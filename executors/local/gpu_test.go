package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// factsDir holds real nvidia-smi output captured on an H200 node; CI keeps
// shared/ beside the repository at the same relative place.
const factsDir = "../../../shared/facts/gpu-h200"

func TestParseNvidiaSMI_RealH200(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(factsDir, "query-gpu.csv"))
	if err != nil {
		t.Skipf("facts not available: %v", err)
	}
	gpus, err := ParseNvidiaSMI(b)
	if err != nil {
		t.Fatal(err)
	}
	want := GPU{Index: 0, UUID: "GPU-fb254fd6-15e8-2fde-2ad5-3c17f5e036db", Name: "NVIDIA H200", MemoryMiB: 143771}
	if len(gpus) != 1 || gpus[0] != want {
		t.Fatalf("got %+v, want [%+v]", gpus, want)
	}
	// The UUID agrees with `nvidia-smi -L`.
	if l, err := os.ReadFile(filepath.Join(factsDir, "nvidia-smi-L.txt")); err == nil && !strings.Contains(string(l), want.UUID) {
		t.Fatalf("nvidia-smi -L does not list %s", want.UUID)
	}
}

func TestParseNvidiaSMI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		n        int
		bad      bool
	}{
		{"two", "0, GPU-a, NVIDIA A100-SXM4-80GB, 81920\n1, GPU-b, NVIDIA A100-SXM4-80GB, 81920\n", 2, false},
		{"empty", "", 0, false},
		{"blank lines", "\n  \n0, GPU-a, X, 1\n\n", 1, false},
		{"crlf", "0, GPU-a, X, 1\r\n", 1, false},
		{"mig memory n/a", "0, GPU-a, X, [N/A]\n", 1, false},
		{"too few columns", "0, GPU-a, X\n", 0, true},
		{"bad index", "x, GPU-a, X, 1\n", 0, true},
		{"negative index", "-1, GPU-a, X, 1\n", 0, true},
		{"bad memory", "0, GPU-a, X, lots\n", 0, true},
		{"repeated index", "0, a, X, 1\n0, b, X, 1\n", 0, true},
		{"error text", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gpus, err := ParseNvidiaSMI([]byte(tc.in))
			if tc.bad != (err != nil) || len(gpus) != tc.n {
				t.Fatalf("got %+v, %v", gpus, err)
			}
		})
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(factsDir, "query-gpu.csv")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("0, GPU-a, NVIDIA A100, 81920\n1, GPU-b, NVIDIA A100, [N/A], 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		gpus, err := ParseNvidiaSMI(data)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, g := range gpus {
			if g.Index < 0 || g.MemoryMiB < 0 || seen[g.Index] {
				t.Fatalf("bad GPU %+v in %+v", g, gpus)
			}
			seen[g.Index] = true
		}
	})
}

// TestLocal_RealGPU runs only where nvidia-smi exists: the executor detects
// the node's GPUs and a one-GPU step sees exactly its slot.
func TestLocal_RealGPU(t *testing.T) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		t.Skip("no nvidia-smi")
	}
	f := newFixture(t, func(c *Config) { c.GPUs = nil })
	if f.ex.Capacity().GPU == 0 {
		t.Fatal("nvidia-smi present but no GPU detected")
	}
	s := shSpec("gpu", `echo "$CUDA_VISIBLE_DEVICES" > outputs/cvd; nvidia-smi -L | tee outputs/list`)
	s.Resources.GPU = 1
	s.Outputs = []executors.OutputSpec{{Name: "cvd", Type: spec.TypeString}, {Name: "list", Type: spec.TypeString}}
	ev := f.run(t, s)
	if ev.State != spec.TaskSucceeded || string(ev.Outputs["cvd"].Param) != `"0"` {
		t.Fatalf("exited %+v", ev)
	}
	t.Logf("capacity %+v; step saw %s", f.ex.Capacity(), ev.Outputs["list"].Param)
}
