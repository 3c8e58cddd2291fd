package executors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// hostSecret makes a file outside any execution root, and returns its
// path; the test fails at cleanup if anything changed it.
func hostSecret(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	const content = "host secret\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Errorf("host file %s changed: %q, %v", p, b, err)
		}
	})
	return p
}

// TestCollectOutputs_SymlinkOutOfRootIsAnError: no output is read or
// written through a symbolic link the step planted that leads out of its
// root; the output gets an error naming it and the link.
func TestCollectOutputs_SymlinkOutOfRootIsAnError(t *testing.T) {
	t.Parallel()
	secret := hostSecret(t)
	hostDir := filepath.Dir(secret)
	for _, tc := range []struct {
		name  string
		plant func(t testing.TB, root string)
		out   OutputSpec
		want  string
	}{
		{"param to host file", func(t testing.TB, root string) {
			symlink(t, secret, OutputPath(root, "p"))
		}, OutputSpec{Name: "p", Type: spec.TypeString}, `outputs/p is a symbolic link to "` + secret + `", outside`},
		{"relative param link", func(t testing.TB, root string) {
			symlink(t, "../../../../../../../../../../.."+secret, OutputPath(root, "p"))
		}, OutputSpec{Name: "p", Type: spec.TypeString}, `outputs/p is a symbolic link to`},
		{"artifact to host file", func(t testing.TB, root string) {
			symlink(t, secret, OutputPath(root, "m"))
		}, OutputSpec{Name: "m", Type: spec.TypeModel}, `outputs/m is a symbolic link to "` + secret + `", outside`},
		{"outputs dir to host dir", func(t testing.TB, root string) {
			os.RemoveAll(filepath.Join(root, OutputsDir))
			symlink(t, hostDir, filepath.Join(root, OutputsDir))
		}, OutputSpec{Name: "secret", Type: spec.TypeDataset}, `outputs is a symbolic link to "` + hostDir + `", outside`},
		{"outputs dir to host dir, param", func(t testing.TB, root string) {
			os.RemoveAll(filepath.Join(root, OutputsDir))
			symlink(t, hostDir, filepath.Join(root, OutputsDir))
		}, OutputSpec{Name: "secret", Type: spec.TypeString}, `outputs is a symbolic link to "` + hostDir + `", outside`},
		{"named pipe as a param", func(t testing.TB, root string) {
			if err := syscall.Mkfifo(OutputPath(root, "p"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, OutputSpec{Name: "p", Type: spec.TypeString}, `a parameter must be a regular file`},
		{"link inside an artifact dir", func(t testing.TB, root string) {
			os.MkdirAll(OutputPath(root, "d"), 0o755)
			symlink(t, hostDir, OutputPath(root, "d/host"))
		}, OutputSpec{Name: "d", Type: spec.TypeDataset}, `symbolic link`},
		{"executor output file to host file", func(t testing.TB, root string) {
			symlink(t, secret, filepath.Join(root, "eo.json"))
		}, OutputSpec{Name: "p", Type: spec.TypeString, ExecutorOutput: "eo.json"}, `executor output file: eo.json is a symbolic link`},
		{"executor output value through a link", func(t testing.TB, root string) {
			os.WriteFile(filepath.Join(root, "eo.json"), []byte(`{"parameterValues": {"p": "overwritten"}}`), 0o644)
			symlink(t, secret, OutputPath(root, "p"))
		}, OutputSpec{Name: "p", Type: spec.TypeString, ExecutorOutput: "eo.json"}, ""},
		{"executor output metadata through a link", func(t testing.TB, root string) {
			os.WriteFile(filepath.Join(root, "eo.json"), []byte(`{"artifacts": {"m": {"artifacts": [{"metadata": {"a": 1}}]}}}`), 0o644)
			symlink(t, secret, OutputPath(root, "m"))
		}, OutputSpec{Name: "m", Type: spec.TypeMetrics, ExecutorOutput: "eo.json"}, `outputs/m is a symbolic link to`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, blobs, _ := collectRoot(t)
			tc.plant(t, root)
			vals, err := CollectOutputs(context.Background(), root, []OutputSpec{tc.out}, blobs, 0)
			if tc.want == "" {
				// The ExecutorOutput value is taken in memory: nothing is
				// written through the step's link.
				if err != nil || string(vals["p"].Param) != `"overwritten"` {
					t.Fatalf("vals %v, err %v; want the executor output's value", vals, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("collected %+v through a link out of the root; want an error", vals)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, `output "`+tc.out.Name+`": `) || !strings.Contains(msg, tc.want) {
				t.Fatalf("err = %q; want it to name the output and contain %q", msg, tc.want)
			}
		})
	}
}

// TestCollectOutputs_InRootLinksAreFollowed: a link that stays inside the
// root is an ordinary path.
func TestCollectOutputs_InRootLinksAreFollowed(t *testing.T) {
	t.Parallel()
	root, blobs, write := collectRoot(t)
	write("tmp/n", "5")
	os.MkdirAll(filepath.Join(root, "tmp/real"), 0o755)
	write("tmp/real/f", "x")
	symlink(t, "../tmp/n", OutputPath(root, "n"))
	os.RemoveAll(filepath.Join(root, OutputsDir))
	symlink(t, "tmp", filepath.Join(root, OutputsDir))
	vals, err := CollectOutputs(context.Background(), root, []OutputSpec{{Name: "real", Type: spec.TypeDataset}}, blobs, 0)
	if err != nil || vals["real"].Artifact == nil || !vals["real"].Artifact.Dir {
		t.Fatalf("vals %v, err %v", vals, err)
	}
}

func TestCollectOutputs_SizeLimit(t *testing.T) {
	t.Parallel()
	root, blobs, write := collectRoot(t)
	write("outputs/ten", "0123456789")
	write("outputs/eleven", "0123456789a")
	os.MkdirAll(filepath.Join(root, "outputs/dir"), 0o755)
	write("outputs/dir/a", "012345")
	write("outputs/dir/b", "012345")
	ctx := context.Background()
	if _, err := CollectOutputs(ctx, root, []OutputSpec{{Name: "ten", Type: spec.TypeModel}}, blobs, 10); err != nil {
		t.Fatalf("an output of exactly the limit: %v", err)
	}
	for _, name := range []string{"eleven", "dir"} {
		_, err := CollectOutputs(ctx, root, []OutputSpec{{Name: name, Type: spec.TypeModel}}, blobs, 10)
		if !errors.Is(err, ErrOutputTooLarge) || !strings.HasPrefix(err.Error(), `output "`+name+`"`) || !strings.Contains(err.Error(), "limit of 10 bytes") {
			t.Errorf("%s: err = %v; want ErrOutputTooLarge naming the output and the limit", name, err)
		}
	}
}

func symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
