package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestCLI_SecondRunSubmitsToTheServingProcess: while a skiff run serves the
// data dir, a second skiff run submits to it through the socket and both
// run at once (the first waits for a file the second writes), and the
// second's steps read the files beside its pipeline.
func TestCLI_SecondRunSubmitsToTheServingProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	p1 := writeFile(t, dir, "first.yaml", `name: first
tasks:
  - name: wait
    command: [/bin/sh, -c, 'while [ ! -e `+gate+` ]; do sleep 0.05; done']
`)
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, other, "input.txt", "beside the pipeline\n")
	p2 := writeFile(t, other, "second.yaml", `name: second
tasks:
  - name: open
    command: [/bin/sh, -c, 'cat {{pipeline.dir}}/input.txt; touch `+gate+`']
`)
	data := filepath.Join(dir, "data")
	first := exec.Command(skiffBin, "--data-dir", data, "run", p1, "--progress", "none", "-o", "json")
	var out1 strings.Builder
	first.Stdout = &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	waitForSocket(t, data)
	second := skiff(t, data, "run", p2, "--progress", "none", "-o", "json", "--wait-lock", "5s")
	if second.code != 0 || !strings.Contains(second.stderr, "serving the data dir") {
		t.Fatalf("second run: exit %d\n%s", second.code, second.stderr)
	}
	s2 := parseSummary(t, second)
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	var s1 summary
	if err := json.Unmarshal([]byte(out1.String()), &s1); err != nil || s1.State != "SUCCEEDED" {
		t.Fatalf("first run: %v %+v", err, s1)
	}
	logs := skiff(t, data, "logs", s2.RunID[:8])
	if logs.code != 0 || !strings.Contains(logs.stdout, "open: beside the pipeline") {
		t.Errorf("logs of the second run: exit %d %q %q", logs.code, logs.stdout, logs.stderr)
	}
}

func waitForSocket(t testing.TB, data string) {
	t.Helper()
	waitUntil(t, "a skiff process serves the data dir", func() bool {
		_, err := os.Stat(filepath.Join(data, "skiff.sock"))
		return err == nil
	})
}

// waitUntil polls cond until it holds, for at most 30s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCLI_RunDetachThenWait: run --detach prints the run id at once; a
// background skiff runs it; runs wait (by prefix) follows it to its end.
func TestCLI_RunDetachThenWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", "name: bg\ntasks:\n  - name: a\n    command: [/bin/sh, -c, 'echo in the background']\n")
	data := filepath.Join(dir, "data")
	r := skiff(t, data, "run", p, "--detach")
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(id) != 36 {
		t.Fatalf("run --detach: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	w := skiff(t, data, "runs", "wait", id[:8], "-o", "json")
	if w.code != 0 || parseSummary(t, w).State != "SUCCEEDED" {
		t.Fatalf("runs wait: exit %d\n%s\n%s", w.code, w.stdout, w.stderr)
	}
	waitUntil(t, "the background skiff lets the data dir go once its run is done", func() bool {
		_, err := os.Stat(filepath.Join(data, "skiff.sock"))
		return os.IsNotExist(err)
	})
	// The socket goes before the process ends: wait for its lock too, or
	// TempDir's removal races the process's last writes.
	waitDataDirFree(t, data)
}

// TestCLI_UsageErrors: an unknown command, subcommand or flag exits 2 with
// one line and a hint; a server that cannot be reached exits 1 with a
// sentence.
func TestCLI_UsageErrors(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate" (see 'skiff --help')`},
		{"unknown subcommand", []string{"runs", "frobnicate"}, 2, `unknown command "runs frobnicate" (see 'skiff runs --help')`},
		{"unknown flag", []string{"runs", "list", "--frob"}, 2, "see 'skiff runs list --help'"},
		{"bad output", []string{"runs", "list", "-o", "xml"}, 2, "--output"},
		{"refused connection", []string{"runs", "list", "--server", "http://127.0.0.1:1"}, 1, "cannot reach the skiff server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := skiff(t, data, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}

// TestCLI_OutputsAndFilters: -o yaml and wide, runs list --state and
// --limit, logs of every task, artifacts ls and get, on the data dir.
func TestCLI_OutputsAndFilters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := writeFile(t, dir, "p.yaml", shellPipeline)
	var ids []string
	for range 2 {
		r := skiff(t, data, "run", p, "--progress", "json", "-o", "name")
		if r.code != 0 {
			t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
		}
		ids = append(ids, strings.TrimSpace(r.stdout))
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if !json.Valid([]byte(l)) {
				t.Errorf("--progress json: standard error has a line that is not JSON: %q", l)
			}
		}
	}
	var list []map[string]any
	r := skiff(t, data, "runs", "list", "-o", "yaml", "--limit", "1", "--state", "succeeded")
	if err := yaml.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0]["run_id"] != ids[1] {
		t.Errorf("runs list -o yaml --limit 1: %v\n%s", err, r.stdout)
	}
	if r := skiff(t, data, "runs", "list", "--sort-by", "created_at asc", "-o", "name"); r.stdout != ids[0]+"\n"+ids[1]+"\n" {
		t.Errorf("runs list --sort-by 'created_at asc': %q, want %s then %s", r.stdout, ids[0], ids[1])
	}
	if r := skiff(t, data, "runs", "list", "--sort-by", "colour"); r.code != 2 || !strings.Contains(r.stderr, "sort_by") {
		t.Errorf("runs list --sort-by colour: exit %d %s", r.code, r.stderr)
	}
	if r := skiff(t, data, "runs", "list", "--state", "FAILED", "-o", "name"); r.code != 0 || r.stdout != "" {
		t.Errorf("runs list --state FAILED: exit %d %q", r.code, r.stdout)
	}
	if r := skiff(t, data, "runs", "list", "-o", "wide"); !strings.Contains(r.stdout, "AGE") || !strings.Contains(r.stdout, "PIPELINE") {
		t.Errorf("runs list -o wide:\n%s", r.stdout)
	}
	var one map[string]any
	r = skiff(t, data, "runs", "get", ids[0][:8], "-o", "yaml")
	if err := yaml.Unmarshal([]byte(r.stdout), &one); err != nil || one["run_id"] != ids[0] || one["outputs"].(map[string]any)["size"] != 11 {
		t.Errorf("runs get -o yaml: %v\n%s", err, r.stdout)
	}
	logs := skiff(t, data, "logs", ids[0][:8])
	if !strings.Contains(logs.stdout, "make: made it") || !strings.Contains(logs.stdout, "use: hello world") {
		t.Errorf("logs without TASK:\n%s%s", logs.stdout, logs.stderr)
	}
	if r := skiff(t, data, "logs", ids[0][:8], "--grep", "^made"); r.stdout != "make: made it\n" {
		t.Errorf("logs --grep: %q %s", r.stdout, r.stderr)
	}
	if r := skiff(t, data, "logs", ids[0][:8], "use", "--tail", "1"); r.stdout != "hello world\n" {
		t.Errorf("logs --tail 1: %q %s", r.stdout, r.stderr)
	}
	cmp := skiff(t, data, "runs", "compare", ids[0][:8], ids[1][:8])
	if cmp.code != 0 || !strings.Contains(cmp.stdout, "parameter  greeting") || !strings.Contains(cmp.stdout, "output     size      11") {
		t.Errorf("runs compare: exit %d\n%s%s", cmp.code, cmp.stdout, cmp.stderr)
	}
	if r := skiff(t, data, "artifacts", "ls", ids[0][:8]); !strings.Contains(r.stdout, "make  text") {
		t.Errorf("artifacts ls:\n%s%s", r.stdout, r.stderr)
	}
	out := filepath.Join(dir, "text.out")
	if r := skiff(t, data, "artifacts", "get", ids[0][:8], "make", "text", "-o", out); r.code != 0 {
		t.Fatalf("artifacts get: exit %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "hello world" {
		t.Errorf("artifact bytes = %q", b)
	}
}

// TestCLI_VersionAndCompletion: --version names the version; completion
// scripts list the commands, subcommands and flags.
func TestCLI_VersionAndCompletion(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	if r := skiff(t, data, "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "skiff version ") {
		t.Errorf("--version: exit %d %q", r.code, r.stdout)
	}
	bash := skiff(t, data, "completion", "bash")
	if bash.code != 0 || !strings.Contains(bash.stdout, "complete -F _skiff skiff") || !strings.Contains(bash.stdout, `"runs list") echo "--output -o`) {
		t.Errorf("completion bash: exit %d\n%s", bash.code, bash.stdout)
	}
	fish := skiff(t, data, "completion", "fish")
	if !strings.Contains(fish.stdout, `-n "__fish_seen_subcommand_from runs" -a list`) {
		t.Errorf("completion fish:\n%s", fish.stdout)
	}
	if r := skiff(t, data, "completion", "tcsh"); r.code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", r.code)
	}
}

// TestCLI_OneSchemaOverServer: run -o json with --server prints what runs
// get -o json (by prefix) prints, the summary every mode prints; token
// create --server creates the token on the server.
func TestCLI_OneSchemaOverServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srvData, client := filepath.Join(dir, "server"), filepath.Join(dir, "client")
	url := startServer(t, srvData)
	p := writeFile(t, dir, "p.yaml", "name: simmed\ntasks:\n  - name: a\n    command: [echo, hi]\n")
	run := skiff(t, client, "--server", url, "run", p, "-o", "json", "--progress", "none")
	if run.code != 0 {
		t.Fatalf("run --server: exit %d\n%s", run.code, run.stderr)
	}
	id := parseSummary(t, run).RunID
	viaServer := skiff(t, client, "runs", "get", id[:8], "-o", "json", "--server", url)
	if viaServer.code != 0 || viaServer.stdout != run.stdout {
		t.Errorf("runs get -o json differs from run -o json:\n%d %s%s\nrun %s", viaServer.code, viaServer.stdout, viaServer.stderr, run.stdout)
	}
	tok := skiff(t, client, "token", "create", "--namespace", "team-a", "--role", "viewer", "--server", url)
	if tok.code != 0 || len(strings.TrimSpace(tok.stdout)) < 20 {
		t.Errorf("token create --server: exit %d %q %s", tok.code, tok.stdout, tok.stderr)
	}
	if _, err := os.Stat(client); !os.IsNotExist(err) {
		t.Errorf("token create --server touched the client's data dir: %v", err)
	}
}

// TestCLI_RunsListWatch: runs list -w prints a row when a run appears or
// changes state, and does not hold the data dir between looks.
func TestCLI_RunsListWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := writeFile(t, dir, "p.yaml", "name: watched\ntasks:\n  - name: a\n    command: [/bin/sh, -c, 'true']\n")
	w := exec.Command(skiffBin, "--data-dir", data, "runs", "list", "-w")
	var out syncBuffer
	w.Stdout = &out
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Process.Kill(); _ = w.Wait() })
	waitUntil(t, "the watch printed its header", func() bool { return strings.Contains(out.String(), "RUN ID") })
	r := skiff(t, data, "run", p, "--progress", "none", "-o", "name", "--wait-lock", "5s")
	if r.code != 0 {
		t.Fatalf("run beside a watch: exit %d\n%s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	waitUntil(t, "the watch printed the run SUCCEEDED", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, id) && strings.Contains(l, "SUCCEEDED") {
				return true
			}
		}
		return false
	})
}

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCLI_RunUploadedPipelineByName: skiff run NAME runs the latest
// version of an uploaded pipeline on a workstation, -p checked against it.
func TestCLI_RunUploadedPipelineByName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := writeFile(t, dir, "p.yaml", shellPipeline)
	if r := skiff(t, data, "pipeline", "upload", p, "--name", "greeter"); r.code != 0 {
		t.Fatalf("upload: exit %d %s", r.code, r.stderr)
	}
	r := skiff(t, data, "run", "greeter", "-p", "greeting=hey", "-o", "json", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("run greeter: exit %d %s", r.code, r.stderr)
	}
	if s := parseSummary(t, r); s.State != "SUCCEEDED" || string(s.Outputs["size"]) != "9" { // "hey world"
		t.Errorf("run greeter: %+v", s)
	}
	if r := skiff(t, data, "run", "greeter", "-p", "nope=1"); r.code != 2 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("run greeter -p nope=1: exit %d %s", r.code, r.stderr)
	}
	if r := skiff(t, data, "run", "absent"); r.code != 2 || !strings.Contains(r.stderr, "nor an uploaded pipeline") {
		t.Errorf("run absent: exit %d %s", r.code, r.stderr)
	}
}
