package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlocks returns the ```sh blocks of the README's section whose
// heading starts with heading (up to the next heading of that level).
func readmeBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	start := strings.Index(readme, "\n"+heading)
	if start < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	level := heading[:strings.Index(heading, " ")+1]
	sec := readme[start+1:]
	if end := strings.Index(sec[len(heading):], "\n"+level); end >= 0 {
		sec = sec[:len(heading)+end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(sec, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("README section %q has no sh block", heading)
	}
	return blocks
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestREADME_TourRuns runs the README's five-minute tour as written, in
// order, as one bash script (set -e: every command must succeed), from a
// directory that looks like the repository root: examples/ and bin/skiff
// (this test's build; 'make build' lines are skipped). The addresses the
// tour listens on are swapped for free ones, and after a line that starts
// a server in the background the script waits for it to listen, as a
// person would. The two commands at the top are checked to be the ones CI
// and the tour use.
func TestREADME_TourRuns(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 (the Iris example needs it)")
	}
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	two := strings.Join(readmeBlocks(t, readme, "## The two commands"), "")
	if two != "go run ./cmd/skiff run examples/iris/pipeline.yaml\nmake test\n" {
		t.Errorf("the two commands changed:\n%s", two)
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil || !regexp.MustCompile(`(?m)^test:.*\n\t\$\(GO\) test -race `).Match(mk) {
		t.Errorf("make test does not run go test -race: %v", err)
	}

	root := t.TempDir()
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(examples, filepath.Join(root, "examples")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(skiffBin, filepath.Join(root, "bin", "skiff")); err != nil {
		t.Fatal(err)
	}
	swap := map[string]string{"127.0.0.1:8080": freeAddr(t), "127.0.0.1:8888": freeAddr(t)}
	// The first command runs as the tour's binary would.
	script := []string{"set -euo pipefail", "bin/skiff run examples/iris/pipeline.yaml --progress none -o name"}
	commands := 0
	for _, block := range readmeBlocks(t, readme, "## A five-minute tour") {
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			if strings.HasPrefix(line, "make ") {
				continue
			}
			for from, to := range swap {
				line = strings.ReplaceAll(line, from, to)
			}
			commands++
			script = append(script, fmt.Sprintf("echo '+ %d' >&2", commands), line)
			cmd, _, _ := strings.Cut(line, "#")
			if m := regexp.MustCompile(`--listen (127\.0\.0\.1):(\d+)`).FindStringSubmatch(cmd); m != nil && strings.HasSuffix(strings.TrimSpace(cmd), "&") {
				script = append(script, fmt.Sprintf("for i in $(seq 600); do (exec 3<>/dev/tcp/%s/%s) 2>/dev/null && break; sleep 0.1; done", m[1], m[2]))
			}
		}
	}
	if commands < 20 {
		t.Fatalf("the tour has %d commands; the README parser lost some", commands)
	}
	cmd := exec.Command("bash", "-c", strings.Join(script, "\n"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SKIFF_DATA_DIR="+filepath.Join(root, "data"), "SKIFF_GPUS=none", "SKIFF_SERVER=", "SKIFF_TOKEN=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(8 * time.Minute):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = fmt.Errorf("timed out: %v", <-done)
	}
	if err != nil {
		t.Fatalf("the README's tour failed (%v); script and output:\n%s\n----\n%s", err, strings.Join(script, "\n"), out.String())
	}
	for _, want := range []string{"State:      SUCCEEDED", "Labels:     team=demo", "(cached)", "SKIPPED", "kfp-count", "/runs/"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the tour's output lacks %q:\n%s", want, out.String())
		}
	}
}
