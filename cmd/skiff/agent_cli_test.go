package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// startProc runs skiff with args, its standard error kept; it is stopped
// (SIGTERM) when the test ends.
func startProc(t *testing.T, name string, args ...string) *clusterProc {
	t.Helper()
	cmd := exec.Command(skiffBin, args...)
	p := &clusterProc{id: name, cmd: cmd}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.stderr())
		}
	})
	return p
}

// agentCluster is a one-server raft cluster with auth, an admin token,
// the local executor allowed in namespace default, and its server's
// worker labelled site=hq.
type agentCluster struct {
	url, admin string
	srv        *clusterProc
}

func startAgentCluster(t *testing.T, dir string) *agentCluster {
	t.Helper()
	raft, listen := freeAddrs(t, 1)[0], freeAddrs(t, 1)[0]
	base := []string{"--data-dir", filepath.Join(dir, "s1"), "server", "--listen", listen, "--raft", raft, "--node-id", "s1",
		"--worker-heartbeat", "200ms", "--node-ttl", "3s", "--node-label", "site=hq"}
	ac := &agentCluster{url: "http://" + listen}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The first admin token, as docs/cluster.md makes it: a loopback
	// server without auth first.
	boot := startProc(t, "bootstrap", append(base, "--no-auth", "--bootstrap-expect", "1")...)
	open := api.NewClient(ac.url, "")
	pollUntil(t, 30*time.Second, "the bootstrap server", func() error { _, err := open.ClusterMembers(ctx); return err })
	tok, err := open.CreateToken(ctx, api.TokenRequest{Namespace: "*", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	ac.admin = tok.Token
	if _, err := open.SetNamespacePolicy(ctx, "default", []string{"local"}); err != nil {
		t.Fatal(err)
	}
	_ = boot.cmd.Process.Signal(syscall.SIGTERM)
	_ = boot.cmd.Wait()
	ac.srv = startProc(t, "s1", base...)
	cl := ac.client()
	pollUntil(t, 30*time.Second, "the server with auth", func() error { _, err := cl.ClusterMembers(ctx); return err })
	return ac
}

func (ac *agentCluster) client() *api.Client { return api.NewClient(ac.url, ac.admin) }

// workerToken makes a worker token for node with the CLI.
func (ac *agentCluster) workerToken(t *testing.T, node string) string {
	t.Helper()
	r := skiff(t, t.TempDir(), "--server", ac.url, "--token", ac.admin, "token", "create", "--role", "worker", "--node-id", node)
	if r.code != 0 {
		t.Fatalf("token create --role worker: exit %d: %s", r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// startAgent runs skiff agent for node with label gpu=true.
func (ac *agentCluster) startAgent(t *testing.T, dir, node, token string, join ...string) *clusterProc {
	t.Helper()
	if len(join) == 0 {
		join = []string{ac.url}
	}
	return startProc(t, node, "--data-dir", dir, "agent", "--join", strings.Join(join, ","), "--token", token,
		"--node-id", node, "--node-label", "gpu=true", "--worker-heartbeat", "200ms", "--executor", "local")
}

// waitWorkerUp polls the workers listing until node is up.
func (ac *agentCluster) waitWorkerUp(t *testing.T, node string) {
	t.Helper()
	pollUntil(t, 30*time.Second, node+" registered", func() error {
		ms, err := ac.client().ClusterMembers(context.Background())
		if err != nil {
			return err
		}
		for _, w := range ms.Workers {
			if w.ID == node && w.State == "up" {
				return nil
			}
		}
		return fmt.Errorf("workers %+v", ms.Workers)
	})
}

func (ac *agentCluster) waitRun(t *testing.T, id string, limit time.Duration) api.Run {
	t.Helper()
	var final api.Run
	pollUntil(t, limit, "the run's end", func() error {
		r, err := ac.client().GetRun(context.Background(), id)
		if err != nil {
			return err
		}
		switch r.State {
		case "SUCCEEDED", "FAILED", "CANCELED":
			final = r
			return nil
		}
		return fmt.Errorf("run %s", r.State)
	})
	return final
}

const agentPipeline = `name: gpu
executor: local
tasks:
  - name: prep
    nodeSelector: {site: hq}
    command: [/bin/sh, -c, 'printf "data from %s" "$(pwd)" > "$1"', prep]
    args: ["{{outputs.data}}"]
    outputs: {data: Artifact}
  - name: train
    nodeSelector: {gpu: "true"}
    command: [/bin/sh, -c, 'printf "trained in %s on " "$(pwd)" > "$2"; cat "$1" >> "$2"', train]
    args: ["{{inputs.data}}", "{{outputs.model}}"]
    inputs: {data: {type: Artifact, from: prep.data}}
    outputs: {model: Artifact}
`

// TestAgent_RunsGPUStepWithArtifacts: a server (raft, auth) and a skiff
// agent with label gpu=true joined with a worker token; the agent is
// listed among the workers as an agent. A run's first step runs on the
// server (site=hq), its second (nodeSelector gpu=true) on the agent: it
// reads the first's artifact (downloaded by the agent) and its own
// output, uploaded by the agent, is readable through the API afterwards
// and shows it ran in the agent's work dir. The worker token cannot
// submit a run. The first server in the agent's --join list is dead: the
// agent goes on to the next.
func TestAgent_RunsGPUStepWithArtifacts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and an agent")
	}
	dir := t.TempDir()
	ac := startAgentCluster(t, dir)
	wt := ac.workerToken(t, "gpu-1")
	agentDir := filepath.Join(dir, "agent-1")
	dead := "http://" + freeAddrs(t, 1)[0]
	ag := ac.startAgent(t, agentDir, "gpu-1", wt, dead, ac.url)
	ac.waitWorkerUp(t, "gpu-1")
	ac.waitWorkerUp(t, "s1") // the server's own worker registers on its own time
	if r := skiff(t, filepath.Join(dir, "agent-x"), "agent", "--join", ac.url, "--token", wt, "--node-id", "gpu-9"); r.code != 2 || !strings.Contains(r.stderr, `the token acts as node "gpu-1"`) {
		t.Errorf("an agent with another --node-id than its token's: exit %d: %s", r.code, r.stderr)
	}
	r := skiff(t, t.TempDir(), "--server", ac.url, "--token", ac.admin, "cluster", "members")
	if r.code != 0 || !strings.Contains(r.stdout, "gpu-1") || !regexpLine(r.stdout, `gpu-1\s+agent\s+up`) || !regexpLine(r.stdout, `s1\s+server\s+up`) {
		t.Errorf("cluster members (exit %d) does not list gpu-1 as an up agent and s1 as a server:\n%s%s", r.code, r.stdout, r.stderr)
	}

	ctx := context.Background()
	_, err := api.NewClient(ac.url, wt).CreateRun(ctx, api.Run{DisplayName: "x", PipelineSpec: mustJSON(agentPipeline)}, "")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.HTTPStatus() != http.StatusForbidden {
		t.Errorf("a run submitted with the worker token: %v, want 403", err)
	}

	run, err := ac.client().CreateRun(ctx, api.Run{DisplayName: "gpu", PipelineSpec: mustJSON(agentPipeline)}, "gpu-1")
	if err != nil {
		t.Fatal(err)
	}
	final := ac.waitRun(t, run.RunID, 90*time.Second)
	if final.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", final.State, final.Error)
	}
	r = skiff(t, t.TempDir(), "--server", ac.url, "--token", ac.admin, "artifacts", "cat", run.RunID, "train", "model")
	if r.code != 0 {
		t.Fatalf("artifacts cat: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "trained in "+filepath.Join(agentDir, "agent", "work")) || !strings.Contains(r.stdout, "on data from "+filepath.Join(dir, "s1")) {
		t.Fatalf("model %q: not made in the agent's work dir from the server's data", r.stdout)
	}
	t.Logf("model: %s", r.stdout)

	// A step on the agent reads the run's pipeline files: the agent gets
	// them through its worker token and unpacks them in its data dir.
	pdir := filepath.Join(dir, "pipe")
	if err := os.MkdirAll(filepath.Join(pdir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(pdir, "data"), "in.csv", "sepal,petal\n5.1,1.4\n")
	p := writeFile(t, pdir, "p.yaml", `name: files
executor: local
tasks:
  - name: read
    nodeSelector: {gpu: "true"}
    command: [/bin/sh, -c, 'cat "$1" > "$2"', read]
    args: ["{{pipeline.dir}}/data/in.csv", "{{outputs.copy}}"]
    outputs: {copy: Artifact}
`)
	r = skiff(t, t.TempDir(), "--server", ac.url, "--token", ac.admin, "run", p, "-o", "name", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("run with pipeline files on the agent: exit %d\n%s", r.code, r.stderr)
	}
	r = skiff(t, t.TempDir(), "--server", ac.url, "--token", ac.admin, "artifacts", "cat", strings.TrimSpace(r.stdout), "read", "copy")
	if r.code != 0 || r.stdout != "sepal,petal\n5.1,1.4\n" {
		t.Errorf("the agent's step did not read the sent file: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if ws, _ := filepath.Glob(filepath.Join(agentDir, "agent", "workspaces", "default", "*", "data", "in.csv")); len(ws) != 1 {
		t.Errorf("agent workspace files = %v, want one data/in.csv", ws)
	}
	if !strings.Contains(ag.stderr(), "now talking to") {
		t.Errorf("the agent did not say it passed over the dead server")
	}
}

// regexpLine reports whether a line of out matches pattern.
func regexpLine(out, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, line := range strings.Split(out, "\n") {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// TestAgent_KilledMidStepRunsElsewhere: an agent is killed (SIGKILL)
// while its step runs; a second agent with the same label is started.
// Once the first agent's node TTL lapses the leader declares it down, the
// step's attempt ends lost, and a new attempt runs on the second agent:
// the run succeeds with two attempts, the model made by the second.
func TestAgent_KilledMidStepRunsElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and two agents")
	}
	dir := t.TempDir()
	ac := startAgentCluster(t, dir)
	a1Dir, a2Dir := filepath.Join(dir, "agent-1"), filepath.Join(dir, "agent-2")
	a1 := ac.startAgent(t, a1Dir, "gpu-1", ac.workerToken(t, "gpu-1"))
	ac.waitWorkerUp(t, "gpu-1")
	marks := t.TempDir()
	pidFile := filepath.Join(marks, "pid")
	// The first attempt sleeps (and is killed with its agent); the next
	// finds the mark and finishes at once.
	pipeline := fmt.Sprintf(`name: slow
executor: local
tasks:
  - name: train
    nodeSelector: {gpu: "true"}
    command: [/bin/sh, -c, 'pwd > "$1"; if [ ! -e %[1]s/mark ]; then touch %[1]s/mark; echo $$ > %[2]s; exec sleep 60; fi', train]
    args: ["{{outputs.model}}"]
    outputs: {model: Artifact}
`, marks, pidFile)
	t.Cleanup(func() { // the first attempt's sleep outlives its killed agent
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	ctx := context.Background()
	run, err := ac.client().CreateRun(ctx, api.Run{DisplayName: "slow", PipelineSpec: mustJSON(pipeline)}, "slow-1")
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 60*time.Second, "the step running on gpu-1", func() error {
		if _, err := os.Stat(pidFile); err != nil {
			return err
		}
		return nil
	})
	// The running step's log is on the agent, which serves no API.
	req, _ := http.NewRequest("GET", ac.url+"/apis/skiff/v1/runs/"+run.RunID+"/tasks/train/logs", nil)
	req.Header.Set("Authorization", "Bearer "+ac.admin)
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "skiff agent") {
			t.Errorf("log of a step running on an agent: %d %s, want 404 saying why", res.StatusCode, body)
		}
	}
	if err := a1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	ac.startAgent(t, a2Dir, "gpu-2", ac.workerToken(t, "gpu-2"))
	final := ac.waitRun(t, run.RunID, 90*time.Second)
	if final.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", final.State, final.Error)
	}
	var attempts string
	for _, d := range final.RunDetails.TaskDetails {
		if d.DisplayName == "train" && d.ExecutorDetail != nil {
			attempts = d.ExecutorDetail.Attempts
		}
	}
	if attempts != "2" {
		t.Errorf("train ran %q attempts, want 2 (the lost one and the one on gpu-2)", attempts)
	}
	r := skiff(t, t.TempDir(), "--server", ac.url, "--token", ac.admin, "artifacts", "cat", run.RunID, "train", "model")
	if r.code != 0 || !strings.HasPrefix(r.stdout, filepath.Join(a2Dir, "agent", "work")) {
		t.Fatalf("model (exit %d) %q %s: not made by gpu-2", r.code, r.stdout, r.stderr)
	}
	ms, err := ac.client().ClusterMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ms.Workers {
		if w.ID == "gpu-1" && w.State != "down" {
			t.Errorf("gpu-1 is %s after its death, want down", w.State)
		}
	}
}

// TestAgent_RefusesBadFlags: bad agent flags are usage errors (exit 2)
// naming the flag, before anything is contacted or written.
func TestAgent_RefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--join", "10.0.0.1:8888", "--token", "x"}, `--join "10.0.0.1:8888": want a server's API URL`},
		{[]string{"--join", "http://127.0.0.1:1", "--token", "x", "--executor", "kube"}, `--executor "kube": an agent offers local, docker or sim`},
		{[]string{"--join", "http://127.0.0.1:1", "--token", "x", "--cpus", "-2"}, `--cpus "-2"`},
		{[]string{"--join", "http://127.0.0.1:1", "--token", "x", "--memory", "lots"}, `--memory "lots"`},
		{[]string{"--join", "http://127.0.0.1:1", "--token", "x", "--gpus", "0,0"}, `--gpus "0,0"`},
		{[]string{"--join", "http://127.0.0.1:1", "--token", "x", "--node-label", "gpu"}, `--node-label "gpu": want KEY=VALUE`},
		{[]string{"--join", "http://127.0.0.1:1", "--token", "x", "--node-id", "-a"}, `--node-id "-a"`},
		{[]string{"--join", "http://127.0.0.1:1"}, `--token: required`},
		{[]string{"--token", "x"}, `--join: give at least one`},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		r := skiff(t, dir, append([]string{"agent"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: the refused agent created its data dir", tc.args)
		}
	}
}
