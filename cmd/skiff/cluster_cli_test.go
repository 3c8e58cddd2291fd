package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

type clusterProc struct {
	id, url string
	cmd     *exec.Cmd
	mu      sync.Mutex
	log     strings.Builder
}

func (p *clusterProc) stderr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.log.String() }

// startClusterNode runs one 'skiff server' of a three-node cluster.
func startClusterNode(t *testing.T, dir, id, listen, raft string, join []string, extra ...string) *clusterProc {
	t.Helper()
	args := []string{"--data-dir", filepath.Join(dir, id), "server", "--no-auth", "--listen", listen,
		"--raft", raft, "--bootstrap-expect", "3", "--join", strings.Join(join, ","), "--node-id", id,
		"--default-executor", "sim", "--sim-duration", "100ms"}
	cmd := exec.Command(skiffBin, append(args, extra...)...)
	p := &clusterProc{id: id, url: "http://" + listen, cmd: cmd}
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
			t.Logf("%s stderr:\n%s", id, p.stderr())
		}
	})
	return p
}

func chainPipeline(n int) string {
	var b strings.Builder
	b.WriteString("name: chain\nexecutor: sim\ntasks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: t%d\n    command: [echo, \"%d\"]\n", i, i)
		if i > 0 {
			fmt.Fprintf(&b, "    after: [t%d]\n", i-1)
		}
	}
	return b.String()
}

// startThreeServers starts n0, n1 and n2 on loopback, formed with
// --bootstrap-expect 3; extra are flags for each.
func startThreeServers(t *testing.T, dir string, extra ...string) []*clusterProc {
	t.Helper()
	raft, listen := freeAddrs(t, 3), freeAddrs(t, 3)
	procs := make([]*clusterProc, 3)
	for i := range procs {
		procs[i] = startClusterNode(t, dir, fmt.Sprintf("n%d", i), listen[i], raft[i], raft, extra...)
	}
	return procs
}

// TestCluster_ThreeServersSurviveLeaderKill: three servers on loopback form
// a cluster; a 50-step chain submitted through a follower succeeds although
// the leader is killed (SIGKILL) in the middle, and a client polling a
// follower meanwhile sees no error.
func TestCluster_ThreeServersSurviveLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dir := t.TempDir()
	// A short node TTL: the killed leader's worker is declared down
	// (and its step runs again) within seconds.
	procs := startThreeServers(t, dir, "--worker-heartbeat", "200ms", "--node-ttl", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leaderOf := func(skip int) (int, error) {
		var last error
		for i, p := range procs {
			if i == skip {
				continue
			}
			ms, err := api.NewClient(p.url, "").ClusterMembers(ctx)
			if err != nil {
				last = err
				continue
			}
			for j, q := range procs {
				if j != skip && ms.LeaderID == q.id {
					return j, nil
				}
			}
			last = fmt.Errorf("%s knows no live leader (%q)", p.id, ms.LeaderID)
		}
		return -1, last
	}
	leader := -1
	pollUntil(t, 30*time.Second, "a leader", func() (err error) { leader, err = leaderOf(-1); return })
	follower := (leader + 1) % 3
	fc := api.NewClient(procs[follower].url, "")

	// Members through the CLI, from a follower.
	m := skiff(t, filepath.Join(dir, "client"), "--server", procs[follower].url, "cluster", "members", "-o", "json")
	var ms api.ClusterMembers
	if m.code != 0 || json.Unmarshal([]byte(m.stdout), &ms) != nil || len(ms.Members) != 3 || ms.LeaderID != procs[leader].id {
		t.Fatalf("cluster members: exit %d\n%s%s", m.code, m.stdout, m.stderr)
	}

	// Submitted through a follower: forwarded to the leader.
	run, err := fc.CreateRun(ctx, api.Run{DisplayName: "chain", PipelineSpec: mustJSON(chainPipeline(50))}, "chain-1")
	if err != nil {
		t.Fatalf("create run through a follower: %v", err)
	}

	// A client polls the follower that stays up, noting its longest
	// stretch of errors.
	var worst time.Duration
	var lastErr error
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		var since time.Time
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_, err := fc.GetRun(ctx, run.RunID)
			switch {
			case err != nil && since.IsZero():
				since, lastErr = time.Now(), err
			case err == nil && !since.IsZero():
				worst = max(worst, time.Since(since))
				since = time.Time{}
			}
		}
	}()

	// Kill the leader once about ten steps are done.
	pollUntil(t, 30*time.Second, "ten steps done", func() error {
		r, err := fc.GetRun(ctx, run.RunID)
		if err != nil {
			return err
		}
		done := 0
		for _, d := range r.RunDetails.TaskDetails {
			if d.State == "SUCCEEDED" {
				done++
			}
		}
		if done < 10 {
			return fmt.Errorf("%d steps done", done)
		}
		return nil
	})
	killed := time.Now()
	if err := procs[leader].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	newLeader := -1
	pollUntil(t, 30*time.Second, "a new leader", func() (err error) { newLeader, err = leaderOf(leader); return })
	t.Logf("new leader %s after %s", procs[newLeader].id, time.Since(killed).Round(time.Millisecond))

	var final api.Run
	pollUntil(t, 45*time.Second, "the run's end", func() error {
		r, err := fc.GetRun(ctx, run.RunID)
		if err != nil {
			return err
		}
		if r.State != "SUCCEEDED" && r.State != "FAILED" && r.State != "CANCELED" {
			return fmt.Errorf("run %s", r.State)
		}
		final = r
		return nil
	})
	close(stopPoll)
	<-polled
	if final.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", final.State, final.Error)
	}
	if worst > 2*time.Second {
		t.Errorf("a client polling a follower saw errors for %s (%v)", worst, lastErr)
	}
}

// pollUntil polls fn until it returns nil, failing after limit.
func pollUntil(t *testing.T, limit time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestCluster_StepsOfAKilledWorkerRunElsewhere: three servers; a fan-out
// of slow steps spreads over the three workers; a follower (and with it
// its worker and the steps it runs) is killed with SIGKILL. Once its node
// TTL lapses the leader declares it down, its steps run again on the
// other nodes, and the run succeeds.
func TestCluster_StepsOfAKilledWorkerRunElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dir := t.TempDir()
	procs := startThreeServers(t, dir, "--sim-duration", "3s", "--worker-heartbeat", "200ms", "--node-ttl", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	leader := -1
	pollUntil(t, 30*time.Second, "a leader", func() error {
		ms, err := api.NewClient(procs[0].url, "").ClusterMembers(ctx)
		if err != nil {
			return err
		}
		for i, p := range procs {
			if ms.LeaderID == p.id {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("no leader yet")
	})
	victim, other := (leader+1)%3, (leader+2)%3
	oc := api.NewClient(procs[other].url, "")
	var b strings.Builder
	b.WriteString("name: fan\nexecutor: sim\ntasks:\n")
	for i := range 9 {
		fmt.Fprintf(&b, "  - {name: s%d, command: [x]}\n", i)
	}
	// Registered workers first: a run submitted before they are would
	// just wait for them.
	time.Sleep(time.Second) // let the three workers register (a wait for an event the API does not show)
	run, err := oc.CreateRun(ctx, api.Run{DisplayName: "fan", PipelineSpec: mustJSON(b.String())}, "fan-1")
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 30*time.Second, "every step running", func() error {
		r, err := oc.GetRun(ctx, run.RunID)
		if err != nil {
			return err
		}
		n := 0
		for _, d := range r.RunDetails.TaskDetails {
			if d.State == "RUNNING" {
				n++
			}
		}
		if n < 9 {
			return fmt.Errorf("%d steps running", n)
		}
		return nil
	})
	if err := procs[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var final api.Run
	pollUntil(t, 60*time.Second, "the run's end", func() error {
		r, err := oc.GetRun(ctx, run.RunID)
		if err != nil {
			return err
		}
		if r.State != "SUCCEEDED" && r.State != "FAILED" && r.State != "CANCELED" {
			return fmt.Errorf("run %s", r.State)
		}
		final = r
		return nil
	})
	if final.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", final.State, final.Error)
	}
	again := 0
	for _, d := range final.RunDetails.TaskDetails {
		if d.ExecutorDetail != nil && d.ExecutorDetail.Attempts != "1" {
			again++
		}
	}
	if again == 0 {
		t.Fatalf("no step ran again after its worker was killed: %+v", final.RunDetails.TaskDetails)
	}
	t.Logf("%d of 9 steps ran again on the surviving nodes", again)
	if !strings.Contains(procs[leader].stderr()+procs[other].stderr(), "node down") {
		t.Errorf("the leader did not log the node down")
	}
}
