package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var skiffBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skiff-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	skiffBin = filepath.Join(dir, "skiff")
	build := exec.Command("go", "build", "-o", skiffBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build skiff:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func skiff(t testing.TB, dataDir string, args ...string) result {
	t.Helper()
	return skiffWithEnv(t, nil, dataDir, args...)
}

// skiffWithEnv runs skiff with the environment env (nil: this process's).
func skiffWithEnv(t testing.TB, env []string, dataDir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(skiffBin, append([]string{"--data-dir", dataDir}, args...)...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("skiff %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

type summary struct {
	RunID   string                     `json:"run_id"`
	State   string                     `json:"state"`
	Error   string                     `json:"error"`
	Outputs map[string]json.RawMessage `json:"outputs"`
	Tasks   []struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
		Cached   bool   `json:"cached"`
		Error    string `json:"error"`
	} `json:"tasks"`
}

func parseSummary(t testing.TB, r result) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("stdout is not one JSON summary: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return s
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const shellPipeline = `
name: shell
executor: local
parameters:
  greeting: {type: string, default: hello}
tasks:
  - name: make
    command: [/bin/sh, -c, 'printf "%s world" "{{inputs.greeting}}" > {{outputs.text}}; echo 3 > {{outputs.n}}; echo made it']
    inputs: {greeting: {type: string, param: greeting}}
    outputs: {text: Artifact, n: int}
  - name: use
    command: [/bin/sh, -c, 'cat {{inputs.text}}; echo; test {{inputs.n}} = 3 && wc -c < {{inputs.text}} | tr -d " \n" > {{outputs.size}}']
    inputs:
      text: {type: Artifact, from: make.text}
      n: {type: int, from: make.n}
    outputs: {size: int}
outputs:
  size: use.size
`

func TestCLI_RunPrintsJSONSummaryAndKeepsLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", shellPipeline)
	r := skiff(t, filepath.Join(dir, "data"), "run", p, "-p", "greeting=hi", "-o", "json", "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	s := parseSummary(t, r)
	if s.State != "SUCCEEDED" || len(s.Tasks) != 2 {
		t.Fatalf("summary = %+v", s)
	}
	for _, tk := range s.Tasks {
		if tk.State != "SUCCEEDED" || tk.Attempts != 1 {
			t.Errorf("task %s: %s, %d attempts", tk.Name, tk.State, tk.Attempts)
		}
	}
	if got := string(s.Outputs["size"]); got != "8" { // "hi world"
		t.Errorf("output size = %s, want 8", got)
	}
	if !strings.Contains(r.stderr, "use") || !strings.Contains(r.stderr, "SUCCEEDED") {
		t.Errorf("plain progress lacks task lines:\n%s", r.stderr)
	}
	logs := skiff(t, filepath.Join(dir, "data"), "logs", s.RunID[:8], "make")
	if logs.code != 0 || !strings.Contains(logs.stdout, "made it") {
		t.Errorf("logs: exit %d, stdout %q, stderr %q", logs.code, logs.stdout, logs.stderr)
	}
	list := skiff(t, filepath.Join(dir, "data"), "runs", "list")
	if list.code != 0 || !strings.Contains(list.stdout, s.RunID) {
		t.Errorf("runs list: exit %d\n%s", list.code, list.stdout)
	}
}

func TestCLI_FailedRunExitsOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", `
name: failing
tasks:
  - name: bad
    command: [/bin/sh, -c, 'echo boom >&2; exit 3']
  - name: after
    command: [/bin/true]
    after: [bad]
`)
	r := skiff(t, filepath.Join(dir, "data"), "run", p, "-o", "json", "--progress", "none")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	s := parseSummary(t, r)
	if s.State != "FAILED" {
		t.Fatalf("state %s", s.State)
	}
	if s.Tasks[0].State != "FAILED" || !strings.Contains(s.Tasks[0].Error, "exit code 3") {
		t.Errorf("task bad: %+v", s.Tasks[0])
	}
	if s.Tasks[1].State != "SKIPPED" {
		t.Errorf("task after: %+v, want SKIPPED", s.Tasks[1])
	}
}

func TestCLI_BadInputExitsTwoAndStoresNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml string
		args       []string
		want       string
	}{
		{"malformed YAML", "name: x\ntasks: [\n", nil, "yaml"},
		{"unknown field", "name: x\ntasks:\n  - name: a\n    command: [/bin/true]\n    colour: red\n", nil, "colour"},
		{"wrong type", "name: x\ntasks:\n  - name: a\n    command: /bin/true\n", nil, "command"},
		{"missing parameter", "name: x\nparameters:\n  lr: {type: float}\ntasks:\n  - name: a\n    command: [/bin/true]\n", nil, "lr"},
		{"bad parameter value", "name: x\nparameters:\n  lr: {type: float}\ntasks:\n  - name: a\n    command: [/bin/true]\n", []string{"-p", "lr=fast"}, "lr"},
		{"unknown parameter", "name: x\ntasks:\n  - name: a\n    command: [/bin/true]\n", []string{"-p", "nope=1"}, "nope"},
		{"cycle", "name: x\ntasks:\n  - name: a\n    command: [/bin/true]\n    after: [b]\n  - name: b\n    command: [/bin/true]\n    after: [a]\n", nil, "cycle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := writeFile(t, dir, "p.yaml", tc.yaml)
			data := filepath.Join(dir, "data")
			r := skiff(t, data, append([]string{"run", p}, tc.args...)...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(tc.want)) {
				t.Errorf("error does not name %q:\n%s", tc.want, r.stderr)
			}
			list := skiff(t, data, "runs", "list", "-o", "json")
			if strings.TrimSpace(list.stdout) != "[]" {
				t.Errorf("runs stored after bad input: %s", list.stdout)
			}
		})
	}
}

// TestCLI_KillNineThenResume kills skiff mid-run with SIGKILL and checks
// that `runs resume` finishes the run without running a finished task twice.
func TestCLI_KillNineThenResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "p.yaml", `
name: crash
parameters:
  marks: {type: string}
tasks:
  - name: first
    command: [/bin/sh, -c, 'echo first >> {{inputs.marks}}/log']
    inputs: {marks: {type: string, param: marks}}
  - name: slow
    command: [/bin/sh, -c, 'echo slow >> {{inputs.marks}}/log; if [ ! -e {{inputs.marks}}/once ]; then touch {{inputs.marks}}/once; sleep 60; fi']
    inputs: {marks: {type: string, param: marks}}
    after: [first]
  - name: last
    command: [/bin/sh, -c, 'echo last >> {{inputs.marks}}/log']
    inputs: {marks: {type: string, param: marks}}
    after: [slow]
`)
	data := filepath.Join(dir, "data")
	cmd := exec.Command(skiffBin, "--data-dir", data, "run", p, "-p", "marks="+marks, "--progress", "plain")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "slow") && strings.Contains(sc.Text(), "RUNNING") {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("task slow never reported RUNNING")
	}
	waitForFile(t, filepath.Join(marks, "once"))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	r := skiff(t, data, "runs", "resume", "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	log, err := os.ReadFile(filepath.Join(marks, "log"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, l := range strings.Fields(string(log)) {
		counts[l]++
	}
	if counts["first"] != 1 || counts["slow"] != 2 || counts["last"] != 1 {
		t.Errorf("executions per task = %v, want first 1, slow 2 (lost + new attempt), last 1", counts)
	}
	list := skiff(t, data, "runs", "list", "-o", "name")
	get := skiff(t, data, "runs", "get", strings.TrimSpace(list.stdout), "-o", "json")
	s := parseSummary(t, get)
	if s.State != "SUCCEEDED" {
		t.Fatalf("run after resume: %s", s.State)
	}
	for _, tk := range s.Tasks {
		want := 1
		if tk.Name == "slow" {
			want = 2
		}
		if tk.Attempts != want {
			t.Errorf("task %s has %d attempts, want %d", tk.Name, tk.Attempts, want)
		}
	}
}

// TestCLI_InterruptCancelsRun sends SIGINT as Ctrl-C does.
func TestCLI_InterruptCancelsRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p := writeFile(t, dir, "p.yaml", `
name: long
tasks:
  - name: sleeper
    command: [/bin/sh, -c, 'echo $$ > `+pidFile+`; exec sleep 60']
  - name: never
    command: [/bin/true]
    after: [sleeper]
`)
	cmd := exec.Command(skiffBin, "--data-dir", filepath.Join(dir, "data"), "run", p, "-o", "json", "--progress", "none")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, pidFile)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want code 1", err)
	}
	s := parseSummary(t, result{stdout: out.String()})
	if s.State != "CANCELED" {
		t.Errorf("state %s, want CANCELED", s.State)
	}
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(string(b), &pid)
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		t.Errorf("step process %d still alive after cancel", pid)
	}
}

// TestCLI_TwoRunsOnOneDataDir starts two runs at once on one data dir.
func TestCLI_TwoRunsOnOneDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", "name: quick\ntasks:\n  - name: a\n    command: [/bin/sh, -c, 'sleep 0.3']\n")
	data := filepath.Join(dir, "data")
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() { results <- skiff(t, data, "run", p, "-o", "json", "--progress", "none") }()
	}
	for i := 0; i < 2; i++ {
		r := <-results
		if r.code != 0 {
			t.Errorf("run %d: exit %d\n%s", i, r.code, r.stderr)
			continue
		}
		if s := parseSummary(t, r); s.State != "SUCCEEDED" {
			t.Errorf("run %d: %s", i, s.State)
		}
	}
	list := skiff(t, data, "runs", "list", "-o", "name")
	if n := len(strings.Fields(list.stdout)); n != 2 {
		t.Errorf("%d runs stored, want 2", n)
	}
}

func waitForFile(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 || err == nil && strings.HasSuffix(path, "once") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within 30s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
