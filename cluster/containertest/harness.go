// Package containertest runs Skiff clusters as Docker containers of the
// project's own image (make image), for tests of real faults: node loss
// with docker kill, partitions with docker network disconnect, rolling
// restarts. Its tests run only when SKIFF_CLUSTER_IMAGE names the image
// (make test-cluster sets it), so make test skips them.
//
// It owns nothing but test scaffolding: no production code imports it.
package containertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/cluster/tlstest"
)

// ImageEnv names the image to test; unset, the tests skip.
const ImageEnv = "SKIFF_CLUSTER_IMAGE"

// Ports inside each container.
const (
	apiPort  = "8888"
	raftPort = "8300"
)

// Node is one container of a Cluster.
type Node struct {
	Name      string // container name
	ID        string // skiff node id (also its host name)
	ClusterIP string // on the cluster network (raft, forwarding)
	ClientIP  string // on the client network (the tests' API calls)
	Volume    string // its data dir
}

// URL is the node's API as the tests reach it.
func (n *Node) URL() string { return "http://" + net.JoinHostPort(n.ClientIP, apiPort) }

// Cluster is a set of skiff server containers on a private network (the
// cluster network, which partitions cut) and a client network (the tests'
// way in, never cut).
type Cluster struct {
	tb        testing.TB
	Image     string
	Prefix    string
	Net       string // the cluster network
	ClientNet string
	Certs     string // host dir mounted at /certs
	Shared    string // host dir mounted at /shared (the steps' side-effect files)
	Token     string // an admin token of every namespace
	Nodes     []*Node
	opts      Options
}

// Options shape a cluster beyond its size.
type Options struct {
	// BlobTmpfs, when set, is the size (a docker tmpfs size such as
	// "48m") of a tmpfs mounted on the last node's blob directory
	// (/data/blobs), so a test can fill that node's disk (FillDisk) and
	// free it again. A tmpfs is empty again after the container restarts:
	// that node loses its blobs, as a node whose disk was replaced would.
	BlobTmpfs string
}

// docker runs the docker CLI and returns its trimmed standard output
// (standard error goes into the error).
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	s := strings.TrimSpace(out.String())
	if err != nil {
		return s, fmt.Errorf("docker %s: %w: %s%s", strings.Join(args, " "), err, s, strings.TrimSpace(errb.String()))
	}
	return s, nil
}

func (c *Cluster) docker(args ...string) string {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := docker(ctx, args...)
	if err != nil {
		c.tb.Fatal(err)
	}
	return out
}

// Image returns the image under test, skipping the test when none is set.
func Image(tb testing.TB) string {
	tb.Helper()
	img := os.Getenv(ImageEnv)
	if img == "" {
		tb.Skipf("container tests: set %s (make test-cluster builds the image and sets it)", ImageEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", img); err != nil {
		tb.Fatalf("image %s: %v (build it with make image)", img, err)
	}
	return img
}

// Start makes the networks and starts n nodes with mutual TLS on the
// cluster port. The first node is bootstrapped alone with --no-auth on
// loopback to create an admin token (a fresh cluster has no token: this
// is the way docs/cluster.md gives), then restarted as a normal member;
// the others join it.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	return StartWith(tb, n, Options{})
}

// StartWith is Start with options.
func StartWith(tb testing.TB, n int, o Options) *Cluster {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	c := &Cluster{tb: tb, Image: Image(tb), Prefix: "skiff-ct-" + hex.EncodeToString(b[:]), opts: o}
	c.Net, c.ClientNet = c.Prefix+"-cluster", c.Prefix+"-client"
	tb.Cleanup(c.destroy)
	ipnet := c.clusterNetwork()
	c.docker("network", "create", "--label", "skiff-test="+c.Prefix, c.ClientNet)
	c.Certs, c.Shared = tb.TempDir(), tb.TempDir()
	for _, d := range []string{c.Certs, c.Shared} {
		if err := os.Chmod(d, 0o777); err != nil {
			tb.Fatal(err)
		}
	}
	ca := tlstest.NewCA(tb, c.Prefix+"-ca")
	for i := range n {
		base := ipnet.IP.To4()
		nd := &Node{
			Name:      fmt.Sprintf("%s-node%d", c.Prefix, i),
			ID:        fmt.Sprintf("node%d", i),
			ClusterIP: net.IPv4(base[0], base[1], base[2], byte(10+i)).String(),
			Volume:    fmt.Sprintf("%s-data%d", c.Prefix, i),
		}
		c.Nodes = append(c.Nodes, nd)
		ca.WriteNode(tb, c.Certs, nd.ID, tlstest.Opts{Hosts: []string{nd.ClusterIP, nd.ID}})
		c.docker("volume", "create", "--label", "skiff-test="+c.Prefix, nd.Volume)
	}
	c.bootstrapToken()
	for i := range c.Nodes {
		c.create(i, false)
		c.startNode(i)
	}
	c.WaitHealthy(n)
	return c
}

// clusterNetwork creates the cluster network on a /24 subnet of its own
// (fixed addresses need one the user chose), trying a few at random.
func (c *Cluster) clusterNetwork() *net.IPNet {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last error
	for range 20 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		subnet := fmt.Sprintf("10.%d.%d.0/24", 200+int(b[0])%50, b[1])
		_, ipnet, _ := net.ParseCIDR(subnet)
		if _, last = docker(ctx, "network", "create", "--subnet", subnet, "--label", "skiff-test="+c.Prefix, c.Net); last == nil {
			return ipnet
		}
	}
	c.tb.Fatalf("cluster network: %v", last)
	return nil
}

// serverArgs are the skiff server arguments of node i.
func (c *Cluster) serverArgs(i int, bootstrap bool) []string {
	nd := c.Nodes[i]
	args := []string{"--data-dir", "/data", "server",
		"--raft", "0.0.0.0:" + raftPort, "--raft-advertise", net.JoinHostPort(nd.ClusterIP, raftPort), "--node-id", nd.ID,
		"--cluster-tls-cert", "/certs/" + nd.ID + ".pem", "--cluster-tls-key", "/certs/" + nd.ID + "-key.pem", "--cluster-tls-ca", "/certs/ca.pem",
		"--default-executor", "local", "--shutdown-grace", "3s",
		// The chaos suite's full-disk fault fills a 48 MiB blob tmpfs:
		// the floor must sit inside it.
		"--min-free-disk-mib", "8"}
	if bootstrap {
		return append(args, "--no-auth", "--listen", "127.0.0.1:"+apiPort, "--bootstrap-expect", "1")
	}
	args = append(args, "--listen", "0.0.0.0:"+apiPort, "--api-advertise", "http://"+net.JoinHostPort(nd.ClusterIP, apiPort), "--allowed-host", api.AnyHost)
	if i > 0 {
		args = append(args, "--join", net.JoinHostPort(c.Nodes[0].ClusterIP, raftPort))
	}
	return args
}

// create makes node i's container (not started): on the cluster network
// at its fixed address, and on the client network.
func (c *Cluster) create(i int, bootstrap bool) string {
	nd := c.Nodes[i]
	name := nd.Name
	if bootstrap {
		name += "-bootstrap"
	}
	args := []string{"create", "--name", name, "--hostname", nd.ID, "--label", "skiff-test=" + c.Prefix,
		"--network", c.Net, "--ip", nd.ClusterIP,
		"-v", nd.Volume + ":/data", "-v", c.Certs + ":/certs:ro", "-v", c.Shared + ":/shared",
		"--stop-timeout", "10"}
	if c.opts.BlobTmpfs != "" && i == len(c.Nodes)-1 && !bootstrap {
		args = append(args, "--tmpfs", "/data/blobs:rw,size="+c.opts.BlobTmpfs+",mode=0755")
	}
	args = append(args, c.Image)
	c.docker(append(args, c.serverArgs(i, bootstrap)...)...)
	if !bootstrap {
		c.docker("network", "connect", c.ClientNet, name)
	}
	return name
}

// bootstrapToken starts node 0 alone, with --no-auth on its loopback,
// creates an admin token and allows the local executor through it, and
// stops it again.
func (c *Cluster) bootstrapToken() {
	c.tb.Helper()
	name := c.create(0, true)
	c.docker("start", name)
	local := []string{"exec", name, "/bin/skiff", "--server", "http://127.0.0.1:" + apiPort}
	var err error
	eventually(c.tb, 60*time.Second, "the bootstrap node's API", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Token, err = docker(ctx, append(local, "token", "create", "--namespace", api.AllNamespaces, "--role", "admin")...)
		return err
	})
	c.docker(append(local, "server", "policy", "--namespace", "default", "--allow-executor", "local")...)
	c.docker("stop", "-t", "10", name)
	c.docker("rm", name)
}

// startNode starts node i's container and learns its client address.
func (c *Cluster) startNode(i int) {
	c.tb.Helper()
	nd := c.Nodes[i]
	c.docker("start", nd.Name)
	nd.ClientIP = c.docker("inspect", "--format", `{{(index .NetworkSettings.Networks "`+c.ClientNet+`").IPAddress}}`, nd.Name)
}

// Client is an admin client of node i's API.
func (c *Cluster) Client(i int) *api.Client {
	cl := api.NewClient(c.Nodes[i].URL(), c.Token)
	cl.HTTP = &http.Client{Timeout: 15 * time.Second}
	return cl
}

// Kill sends SIGKILL to node i's container (docker kill).
func (c *Cluster) Kill(i int) { c.tb.Helper(); c.docker("kill", c.Nodes[i].Name) }

// Restart starts a killed or stopped node again on its data.
func (c *Cluster) Restart(i int) { c.tb.Helper(); c.startNode(i) }

// Stop stops node i gracefully (SIGTERM, then SIGKILL after 10 s).
func (c *Cluster) Stop(i int) { c.tb.Helper(); c.docker("stop", "-t", "10", c.Nodes[i].Name) }

// Pause freezes node i's processes (docker pause): it neither answers
// nor renews its leases until Unpause.
func (c *Cluster) Pause(i int) { c.tb.Helper(); c.docker("pause", c.Nodes[i].Name) }

// Unpause thaws a paused node.
func (c *Cluster) Unpause(i int) { c.tb.Helper(); c.docker("unpause", c.Nodes[i].Name) }

// Exec runs a command in node i's container and returns its output.
func (c *Cluster) Exec(i int, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return docker(ctx, append([]string{"exec", c.Nodes[i].Name}, cmd...)...)
}

// FillDisk fills the last node's blob tmpfs (Options.BlobTmpfs) with one
// file, until the file system says it is full; FreeDisk removes it.
func (c *Cluster) FillDisk() error {
	out, err := c.Exec(len(c.Nodes)-1, "/bin/sh", "-c", "/bin/dd if=/dev/zero of=/data/blobs/chaos-fill bs=1M 2>&1; /bin/df -k /data/blobs | /bin/tail -1")
	if !strings.Contains(out, "100%") {
		return fmt.Errorf("fill %s: %v: %s", c.Nodes[len(c.Nodes)-1].ID, err, out)
	}
	return nil
}

// FreeDisk undoes FillDisk.
func (c *Cluster) FreeDisk() error {
	_, err := c.Exec(len(c.Nodes)-1, "/bin/rm", "-f", "/data/blobs/chaos-fill")
	return err
}

// Disconnect cuts node i off the cluster network (docker network
// disconnect); the tests still reach its API on the client network.
func (c *Cluster) Disconnect(i int) {
	c.tb.Helper()
	c.docker("network", "disconnect", c.Net, c.Nodes[i].Name)
}

// Connect heals Disconnect, at the node's fixed address.
func (c *Cluster) Connect(i int) {
	c.tb.Helper()
	c.docker("network", "connect", "--ip", c.Nodes[i].ClusterIP, c.Net, c.Nodes[i].Name)
}

// Logs returns node i's container log.
func (c *Cluster) Logs(i int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", "--tail", "300", c.Nodes[i].Name)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// Leader returns the index of the node every answering node names as
// leader (nodes in skip are not asked).
func (c *Cluster) Leader(ctx context.Context, skip ...int) (int, error) {
	leader := -1
	for i := range c.Nodes {
		if contains(skip, i) {
			continue
		}
		ms, err := c.Client(i).ClusterMembers(ctx)
		if err != nil {
			return -1, fmt.Errorf("%s: %w", c.Nodes[i].ID, err)
		}
		j := c.index(ms.LeaderID)
		if j < 0 || contains(skip, j) || (leader >= 0 && j != leader) {
			return -1, fmt.Errorf("%s names leader %q", c.Nodes[i].ID, ms.LeaderID)
		}
		leader = j
	}
	if leader < 0 {
		return -1, fmt.Errorf("no node asked")
	}
	return leader, nil
}

func (c *Cluster) index(id string) int {
	for i, n := range c.Nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// WaitHealthy waits until every node is a reachable member of an
// n-member cluster, with one leader, and none says its reads are stale.
func (c *Cluster) WaitHealthy(n int) {
	c.tb.Helper()
	eventually(c.tb, 90*time.Second, "a healthy cluster", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.Leader(ctx); err != nil {
			return err
		}
		for i := range c.Nodes {
			ms, err := c.Client(i).ClusterMembers(ctx)
			if err != nil {
				return err
			}
			if len(ms.Members) != n {
				return fmt.Errorf("%s sees %d members", c.Nodes[i].ID, len(ms.Members))
			}
			for _, m := range ms.Members {
				if !m.Reachable || m.Status.Stale {
					return fmt.Errorf("%s sees %s reachable=%v stale=%v %s", c.Nodes[i].ID, m.ID, m.Reachable, m.Status.Stale, m.Error)
				}
			}
		}
		return nil
	})
}

// Digests waits until every node has applied the same index and returns
// each one's digest at it.
func (c *Cluster) Digests(limit time.Duration) []api.ClusterDigest {
	c.tb.Helper()
	var ds []api.ClusterDigest
	eventually(c.tb, limit, "every node at the same applied index", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ds = ds[:0]
		for i := range c.Nodes {
			d, err := c.Client(i).ClusterDigest(ctx)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		for _, d := range ds[1:] {
			if d.AppliedIndex != ds[0].AppliedIndex {
				return fmt.Errorf("applied indexes differ: %+v", ds)
			}
		}
		return nil
	})
	return ds
}

// destroy removes the containers, volumes and networks (also on failure,
// after logging each node's output).
func (c *Cluster) destroy() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.tb.Failed() {
		for i := range c.Nodes {
			c.tb.Logf("=== %s log:\n%s", c.Nodes[i].ID, c.Logs(i))
		}
	}
	filter := "label=skiff-test=" + c.Prefix
	if ids, _ := docker(ctx, "ps", "-aq", "--filter", filter); ids != "" {
		_, _ = docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if vs, _ := docker(ctx, "volume", "ls", "-q", "--filter", filter); vs != "" {
		_, _ = docker(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(vs)...)...)
	}
	for _, n := range []string{c.Net, c.ClientNet} {
		_, _ = docker(ctx, "network", "rm", n)
	}
	// The steps wrote the shared files as root: make them removable by
	// whoever runs the tests.
	_ = filepath.Walk(c.Shared, func(p string, _ os.FileInfo, _ error) error { _ = os.Chmod(p, 0o777); return nil })
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Eventually polls fn until it returns nil, failing after limit.
func Eventually(tb testing.TB, limit time.Duration, what string, fn func() error) {
	tb.Helper()
	eventually(tb, limit, what, fn)
}

// eventually polls fn until it returns nil, failing after limit.
func eventually(tb testing.TB, limit time.Duration, what string, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}
