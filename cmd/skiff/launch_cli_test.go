package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI_LaunchInstallCopiesItself(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dst := filepath.Join(dir, "bin", "skiff")
	if err := os.Mkdir(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := skiff(t, filepath.Join(dir, "data"), "launch", "--install", dst); r.code != 0 {
		t.Fatalf("install: exit %d\n%s", r.code, r.stderr)
	}
	out, err := exec.Command(dst, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "skiff") {
		t.Fatalf("installed copy: %v\n%s", err, out)
	}
}

func TestCLI_LaunchWithoutSpecIsBadInput(t *testing.T) {
	t.Parallel()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKIFF_LAUNCH_") {
			env = append(env, kv)
		}
	}
	r := skiffWithEnv(t, env, filepath.Join(t.TempDir(), "data"), "launch")
	if r.code != 2 || !strings.Contains(r.stderr, "SKIFF_LAUNCH_SPEC") {
		t.Fatalf("exit %d, want 2 naming SKIFF_LAUNCH_SPEC\n%s", r.code, r.stderr)
	}
	r = skiffWithEnv(t, append(env, `SKIFF_LAUNCH_SPEC={"execution":"e","root":"/skiff","command":["true"]}`), filepath.Join(t.TempDir(), "data"), "launch")
	if r.code != 2 || !strings.Contains(r.stderr, "SKIFF_LAUNCH_API") {
		t.Fatalf("exit %d, want 2 naming SKIFF_LAUNCH_API\n%s", r.code, r.stderr)
	}
}

func TestCLI_ServerLauncherImageNeedsAPI(t *testing.T) {
	t.Parallel()
	r := skiff(t, filepath.Join(t.TempDir(), "data"), "server", "--no-auth", "--listen", "127.0.0.1:0", "--kube-launcher-image", "skiff:dev")
	if r.code == 0 || !strings.Contains(r.stderr, "--kube-launcher-api") {
		t.Fatalf("exit %d, want a failure naming --kube-launcher-api\n%s", r.code, r.stderr)
	}
}
