package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/executors/docker/dockertest"
)

// dockerPipeline returns examples/hello made to run in the busybox test
// image: the copy names an image on each task and leaves the executor to
// --executor.
func dockerPipeline(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/hello/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^executor: local\n`).ReplaceAllString(string(b), "")
	s = regexp.MustCompile(`(?m)^(  - name: \S+)$`).ReplaceAllString(s, "$1\n    image: "+dockertest.Image)
	return writeFile(t, dir, "hello-docker.yaml", s)
}

func skiffEnv(t testing.TB) []string {
	return append(os.Environ(), "SKIFF_DOCKER_PULL_POLICY=Never")
}

func TestCLI_HelloWithDockerExecutor(t *testing.T) {
	t.Parallel()
	dockertest.Client(t)
	dir := t.TempDir()
	p := dockerPipeline(t, dir)
	data := filepath.Join(dir, "data")
	cmd := exec.Command(skiffBin, "--data-dir", data, "run", p, "--executor", "docker", "-p", "who=skiff", "-o", "json", "--progress", "plain")
	cmd.Env = skiffEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	s := parseSummary(t, result{stdout: out.String(), stderr: errb.String()})
	if s.State != "SUCCEEDED" {
		t.Fatalf("summary %+v\n%s", s, errb.String())
	}
	if got := string(s.Outputs["chars"]); got != "13" { // "HELLO, SKIFF\n"
		t.Errorf("chars = %s, want 13", got)
	}
}

// TestCLI_DockerKillNineThenResumeAdopts kills skiff while a docker step
// runs: `runs resume` adopts the container (no second attempt), and `logs
// -f` beside the running skiff follows the step from the Docker engine.
func TestCLI_DockerKillNineThenResumeAdopts(t *testing.T) {
	t.Parallel()
	dockertest.Client(t)
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", `
name: adopt
executor: docker
tasks:
  - name: slow
    image: `+dockertest.Image+`
    command: [/bin/sh, -c, 'echo tick; sleep 4; echo tock; printf 7 > {{outputs.n}}']
    outputs: {n: int}
`)
	data := filepath.Join(dir, "data")
	cmd := exec.Command(skiffBin, "--data-dir", data, "run", p, "--progress", "plain")
	cmd.Env = skiffEnv(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runID := make(chan string, 1)
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if m := regexp.MustCompile(`^run (\S+):`).FindStringSubmatch(sc.Text()); m != nil {
				runID <- m[1]
			}
			if !once && strings.Contains(sc.Text(), "slow") && strings.Contains(sc.Text(), "RUNNING") {
				once = true
				close(running)
			}
		}
	}()
	var id string
	select {
	case id = <-runID:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no run id")
	}
	select {
	case <-running:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("task slow never reported RUNNING")
	}
	// RUNNING is shown once the task is assigned; wait for its container
	// to run (before that, a crash leaves nothing to adopt).
	cli := dockertest.Client(t)
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", docker.LabelRun+"="+id))})
		if err == nil && len(cs) == 1 && cs[0].State == "running" {
			break
		}
		if time.Now().After(end) {
			cmd.Process.Kill()
			t.Fatalf("no running container for run %s: %v", id, err)
		}
	}
	// skiff holds the data dir: -f follows from the Docker engine.
	follow := exec.Command(skiffBin, "--data-dir", data, "logs", "-f", id, "slow")
	var fout, ferr bytes.Buffer
	follow.Stdout, follow.Stderr = &fout, &ferr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	rcmd := exec.Command(skiffBin, "--data-dir", data, "runs", "resume", "--progress", "plain")
	rcmd.Env = skiffEnv(t)
	if out, err := rcmd.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	get := skiff(t, data, "runs", "get", id, "-o", "json")
	s := parseSummary(t, get)
	if s.State != "SUCCEEDED" || len(s.Tasks) != 1 || s.Tasks[0].Attempts != 1 {
		t.Fatalf("after resume: %+v (want SUCCEEDED with the one attempt adopted)", s)
	}
	logs := skiff(t, data, "logs", id, "slow")
	if strings.Count(logs.stdout, "tick") != 1 || !strings.Contains(logs.stdout, "tock") {
		t.Errorf("logs %q: want one tick and a tock", logs.stdout)
	}
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(fout.String(), "tick") {
			t.Errorf("logs -f: %v, stdout %q, stderr %q", err, fout.String(), ferr.String())
		}
	case <-time.After(30 * time.Second):
		follow.Process.Kill()
		t.Error("logs -f did not end after the container did")
	}
}
