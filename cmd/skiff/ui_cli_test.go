package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startUI starts skiff ui on data and returns its base URL and what it
// said about how it shows the data dir.
func startUI(t *testing.T, data string) (string, string) {
	t.Helper()
	cmd := exec.Command(skiffBin, "--data-dir", data, "ui", "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	found := make(chan []string, 1)
	go func() {
		re := regexp.MustCompile(`skiff ui: (http://\S+/) \(data dir [^,]+, ([^;]+);`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1:]
			}
		}
	}()
	select {
	case m := <-found:
		return m[0], m[1]
	case <-time.After(60 * time.Second):
		t.Fatal("skiff ui did not start")
	}
	return "", ""
}

func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCLI_RunPrintsTheUIsRunPage: with skiff ui serving the data dir, a
// skiff run on it submits there and prints the run's page in the UI first.
func TestCLI_RunPrintsTheUIsRunPage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base, how := startUI(t, data)
	if how != "serving it" {
		t.Errorf("skiff ui on a free data dir: %q", how)
	}
	p := writeFile(t, dir, "p.yaml", "name: shown\ntasks:\n  - name: a\n    command: [/bin/sh, -c, 'echo hi']\n")
	r := skiff(t, data, "run", p, "-o", "name", "--progress", "plain")
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(id) != 36 {
		t.Fatalf("run: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	want := base + "runs/" + id
	if first := strings.SplitN(r.stderr, "\n", 2)[0]; !strings.Contains(first, want) {
		t.Errorf("run's first line %q does not name %s", first, want)
	}
	if code, body := getPage(t, want); code != 200 || !strings.Contains(body, id) {
		t.Errorf("GET %s: %d", want, code)
	}
}

// TestCLI_UIBesideARunningRun: skiff ui on a data dir a skiff process
// already serves shows it through the data dir's socket (pages and the
// API), and skiff run then prints the run's page.
func TestCLI_UIBesideARunningRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	slow := writeFile(t, dir, "slow.yaml", "name: slow\ntasks:\n  - name: wait\n    command: [/bin/sh, -c, 'sleep 60']\n")
	d := skiff(t, data, "run", slow, "--detach")
	slowID := strings.TrimSpace(d.stdout)
	if d.code != 0 || len(slowID) != 36 {
		t.Fatalf("run --detach: exit %d %q %s", d.code, d.stdout, d.stderr)
	}
	t.Cleanup(func() {
		skiff(t, data, "runs", "cancel", slowID)
		waitDataDirFree(t, data) // the detached run's process, before TempDir's removal
	})
	waitForSocket(t, data)
	base, how := startUI(t, data)
	if !strings.Contains(how, "through the skiff process serving it") {
		t.Errorf("skiff ui beside a serving process: %q", how)
	}
	if code, body := getPage(t, base+"runs"); code != 200 || !strings.Contains(body, slowID[:8]) {
		t.Errorf("GET /runs through the socket: %d, run %s listed: %v", code, slowID[:8], strings.Contains(body, slowID[:8]))
	}
	if code, body := getPage(t, base+"runs/"+slowID); code != 200 || !strings.Contains(body, "wait") {
		t.Errorf("GET the run's page through the socket: %d", code)
	}
	if code, body := getPage(t, base+"apis/skiff/v1/runs/"+slowID[:8]); code != 200 || !strings.Contains(body, `"state":"RUNNING"`) {
		t.Errorf("the API through the socket: %d %s", code, body)
	}
	p := writeFile(t, dir, "p.yaml", "name: quick\ntasks:\n  - name: a\n    command: [/bin/true]\n")
	r := skiff(t, data, "run", p, "-o", "name", "--progress", "plain")
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.Contains(r.stderr, base+"runs/"+id) {
		t.Errorf("run beside skiff ui: exit %d, stderr:\n%s\nwant %s", r.code, r.stderr, base+"runs/"+id)
	}
}

// waitDataDirFree waits until no process holds the data dir's store lock
// (the flock on store/LOCK), so that the test's temp dir can be removed
// without a process still writing in it.
func waitDataDirFree(t testing.TB, data string) {
	t.Helper()
	waitUntil(t, "the data dir's lock is free", func() bool {
		f, err := os.OpenFile(filepath.Join(data, "store", "LOCK"), os.O_RDWR, 0)
		if err != nil {
			return errors.Is(err, os.ErrNotExist)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return false
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return true
	})
}
