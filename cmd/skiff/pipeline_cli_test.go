package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServer runs 'skiff server --no-auth' on a free loopback port and
// returns its URL. The default executor is sim unless executor names one.
func startServer(t *testing.T, dataDir string, executor ...string) string {
	t.Helper()
	x := "sim"
	if len(executor) > 0 {
		x = executor[0]
	}
	cmd := exec.Command(skiffBin, "--data-dir", dataDir, "server", "--no-auth", "--listen", "127.0.0.1:0", "--default-executor", x)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

func TestCLI_PipelineUploadListGetAndRetryOverServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url := startServer(t, filepath.Join(dir, "server"))
	client := filepath.Join(dir, "client") // unused data dir: --server must not touch it
	p := writeFile(t, dir, "hello.yaml", "name: hello\nexecutor: sim\ntasks:\n  - name: hi\n    command: [echo, hi]\n")

	up := skiff(t, client, "--server", url, "pipeline", "upload", p, "-o", "json")
	var ps []struct {
		ID   string `json:"pipeline_id"`
		Name string `json:"display_name"`
	}
	if up.code != 0 || json.Unmarshal([]byte(up.stdout), &ps) != nil || len(ps) != 1 || ps[0].Name != "hello" {
		t.Fatalf("upload: exit %d\n%s\n%s", up.code, up.stdout, up.stderr)
	}
	if again := skiff(t, client, "--server", url, "pipeline", "upload", p); again.code != 2 {
		t.Fatalf("second upload with the same name: exit %d, want 2\n%s", again.code, again.stderr)
	}
	if l := skiff(t, client, "--server", url, "pipeline", "list"); l.code != 0 || !strings.Contains(l.stdout, ps[0].ID) {
		t.Fatalf("list: exit %d\n%s%s", l.code, l.stdout, l.stderr)
	}
	for _, ref := range []string{ps[0].ID, "hello"} {
		g := skiff(t, client, "--server", url, "pipeline", "get", ref, "-o", "json")
		var got struct {
			ID       string `json:"pipeline_id"`
			Versions []struct {
				Digest string `json:"digest"`
			} `json:"versions"`
		}
		if g.code != 0 || json.Unmarshal([]byte(g.stdout), &got) != nil || got.ID != ps[0].ID || len(got.Versions) != 1 || got.Versions[0].Digest == "" {
			t.Fatalf("get %s: exit %d\n%s%s", ref, g.code, g.stdout, g.stderr)
		}
	}
	if g := skiff(t, client, "--server", url, "pipeline", "get", "nope"); g.code != 2 {
		t.Fatalf("get of an unknown pipeline: exit %d", g.code)
	}
	if r := skiff(t, client, "--server", url, "runs", "retry", "no-such-run"); r.code != 2 {
		t.Fatalf("retry of an unknown run: exit %d\n%s", r.code, r.stderr)
	}
}
