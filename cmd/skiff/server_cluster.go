package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// clusterFlags are skiff server's cluster flags.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "raft", EnvVars: []string{"SKIFF_RAFT"}, Usage: "cluster `ADDR` (host:port) to listen on for raft and the other servers; without it the server is a cluster of one"},
		&cli.StringFlag{Name: "raft-advertise", Usage: "cluster `ADDR` the other servers reach this one by (default: --raft, which must then name a host)"},
		&cli.StringFlag{Name: "api-advertise", Usage: "API `URL` the other servers forward writes to (default: http(s)://--listen)"},
		&cli.IntFlag{Name: "bootstrap-expect", Usage: "form a new cluster once `N` fresh servers (this one included) have found each other through --join"},
		&cli.StringSliceFlag{Name: "join", EnvVars: []string{"SKIFF_JOIN"}, Usage: "cluster `ADDR[,ADDR...]` of other servers: to join their cluster, or to find the --bootstrap-expect peers (repeatable)"},
		&cli.StringFlag{Name: "node-id", Usage: "this server's cluster `ID` (default: generated once and kept in the data dir)"},
		&cli.DurationFlag{Name: "raft-heartbeat-timeout", Value: store.DefaultRaftConfig().HeartbeatTimeout, Usage: "with --raft: a follower that hears nothing from the leader for this `DURATION` (up to twice it, randomised) stands for election; raise it (with --raft-election-timeout) on a slow or loaded network"},
		&cli.DurationFlag{Name: "raft-election-timeout", Value: store.DefaultRaftConfig().ElectionTimeout, Usage: "with --raft: a candidate without a majority tries again after this `DURATION` (randomised; at least --raft-heartbeat-timeout)"},
		&cli.DurationFlag{Name: "raft-lease-timeout", Value: store.DefaultRaftConfig().LeaderLeaseTimeout, Usage: "with --raft: a leader that hears from no majority for this `DURATION` steps down (at most --raft-heartbeat-timeout)"},
		&cli.DurationFlag{Name: "worker-heartbeat", Value: store.DefaultRaftConfig().WorkerHeartbeat, Usage: "how often this server's worker renews its lease (one command per node)"},
		&cli.DurationFlag{Name: "node-ttl", Value: store.DefaultRaftConfig().NodeTTL, Usage: "a worker not heard from for this `DURATION` is declared down by the leader; what it ran is lost and runs again elsewhere (at least twice --worker-heartbeat)"},
		&cli.DurationFlag{Name: "blob-repair-interval", Value: cluster.DefaultBlobsConfig().RepairInterval, Usage: "how often this server fetches the artifacts and logs it should hold and lacks (it came back, or a holder left); 0 never"},
		&cli.Int64Flag{Name: "min-free-disk-mib", Value: 64, Usage: "while the data dir's (or its blob dir's) file system has less than `MIB` MiB free, this server's worker tells the leader, which places no new step on it (0: never)"},
		&cli.StringSliceFlag{Name: "node-label", Usage: "a label `KEY=VALUE` of this server's worker (repeatable); a step with nodeSelector runs only on workers whose labels include every pair of it"},
		&cli.StringFlag{Name: "cluster-tls-cert", EnvVars: []string{"SKIFF_CLUSTER_TLS_CERT"}, Usage: "this server's certificate `FILE` (PEM) for mutual TLS on the cluster port; signed by --cluster-tls-ca, for both server and client auth"},
		&cli.StringFlag{Name: "cluster-tls-key", EnvVars: []string{"SKIFF_CLUSTER_TLS_KEY"}, Usage: "private key `FILE` (PEM) of --cluster-tls-cert"},
		&cli.StringFlag{Name: "cluster-tls-ca", EnvVars: []string{"SKIFF_CLUSTER_TLS_CA"}, Usage: "CA certificate `FILE` (PEM): the cluster port accepts and dials only servers whose certificate it signed"},
	}
}

// workerTimings sets the worker knobs of rc from the flags.
func workerTimings(c *cli.Context, rc *store.RaftConfig) error {
	rc.WorkerHeartbeat, rc.NodeTTL = c.Duration("worker-heartbeat"), c.Duration("node-ttl")
	switch {
	case rc.WorkerHeartbeat <= 0:
		return usageError("--worker-heartbeat %s: must be positive", rc.WorkerHeartbeat)
	case rc.NodeTTL < 2*rc.WorkerHeartbeat:
		return usageError("--node-ttl %s: must be at least twice --worker-heartbeat (%s)", rc.NodeTTL, rc.WorkerHeartbeat)
	}
	return nil
}

// raftTimings sets the election knobs of rc from the flags.
func raftTimings(c *cli.Context, rc *store.RaftConfig) error {
	hb, el, lease := c.Duration("raft-heartbeat-timeout"), c.Duration("raft-election-timeout"), c.Duration("raft-lease-timeout")
	const least = 10 * time.Millisecond
	switch {
	case hb < least:
		return usageError("--raft-heartbeat-timeout %s: want at least %s", hb, least)
	case el < hb:
		return usageError("--raft-election-timeout %s: want at least --raft-heartbeat-timeout (%s)", el, hb)
	case lease < least || lease > hb:
		return usageError("--raft-lease-timeout %s: want %s to --raft-heartbeat-timeout (%s)", lease, least, hb)
	}
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = hb, el, lease
	return nil
}

// nodeIDFile keeps a server's cluster id in its data dir.
const nodeIDFile = "node-id"

var validNodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// nodeID returns the id kept in dir, or the one given (or a new one) after
// keeping it there. A given id that differs from the kept one is refused:
// a node's id must not change under its raft log.
func nodeID(dir, given string) (string, error) {
	if given != "" && !validNodeID.MatchString(given) {
		return "", usageError("--node-id %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", given)
	}
	path := filepath.Join(dir, nodeIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		kept := strings.TrimSpace(string(data))
		if !validNodeID.MatchString(kept) {
			return "", fmt.Errorf("%s: %q is not a valid node id", path, kept)
		}
		if given != "" && given != kept {
			return "", usageError("--node-id %q: this data dir belongs to node %q (%s)", given, kept, path)
		}
		return kept, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("node id: %w", err)
	}
	id := given
	if id == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		host, _ := os.Hostname()
		host = strings.Split(host, ".")[0]
		if !validNodeID.MatchString(host) || len(host) > 40 {
			host = "skiff"
		}
		id = host + "-" + hex.EncodeToString(b[:])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}

// clusterSetup is what the cluster flags give a server: the store's raft
// config and the cluster port (nil without --raft).
type clusterSetup struct {
	raft store.RaftConfig
	mux  *cluster.Mux
	cfg  cluster.Config
	// labels are the worker's (--node-label).
	labels map[string]string
	// minFreeDisk is --min-free-disk-mib in bytes (0: not checked).
	minFreeDisk int64
}

// nodeLabels reads --node-label KEY=VALUE flags.
func nodeLabels(c *cli.Context) (map[string]string, error) {
	var out map[string]string
	for _, kv := range c.StringSlice("node-label") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageError("--node-label %q: want KEY=VALUE", kv)
		}
		if err := spec.CheckLabel(k, v); err != nil {
			return nil, usageError("--node-label %q: %v", kv, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		if old, dup := out[k]; dup && old != v {
			return nil, usageError("--node-label %q: %s is already %q", kv, k, old)
		}
		out[k] = v
	}
	return out, nil
}

// setupCluster reads the cluster flags. Without --raft the node is a
// one-voter cluster on an in-memory transport, as a workstation's.
func setupCluster(c *cli.Context, dir, apiURL string) (*clusterSetup, error) {
	cs := &clusterSetup{raft: store.LocalRaftConfig(), cfg: cluster.DefaultConfig(apiURL)}
	if err := workerTimings(c, &cs.raft); err != nil {
		return nil, err
	}
	var timings store.RaftConfig // read before any port opens
	if err := raftTimings(c, &timings); err != nil {
		return nil, err
	}
	labels, err := nodeLabels(c)
	if err != nil {
		return nil, err
	}
	cs.labels = labels
	if mib := c.Int64("min-free-disk-mib"); mib < 0 || mib > 1<<40 {
		return nil, usageError("--min-free-disk-mib %d: want 0 (off) or a number of MiB", mib)
	} else {
		cs.minFreeDisk = mib << 20
	}
	var join []string
	for _, j := range c.StringSlice("join") {
		join = append(join, nonEmpty(strings.Split(j, ","))...)
	}
	for _, j := range join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return nil, usageError("--join %q: %v (want host:port of another server's --raft)", j, err)
		}
	}
	expect := c.Int("bootstrap-expect")
	raftAddr := c.String("raft")
	if raftAddr == "" {
		for _, f := range []string{"raft-advertise", "bootstrap-expect", "join", "node-id", "cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca"} {
			if c.IsSet(f) {
				return nil, usageError("--%s needs --raft ADDR", f)
			}
		}
		return cs, nil
	}
	if expect < 0 {
		return nil, usageError("--bootstrap-expect %d: must not be negative", expect)
	}
	if expect > 1 && len(join) == 0 {
		return nil, usageError("--bootstrap-expect %d needs --join with the other servers' cluster addresses", expect)
	}
	tc, err := clusterTLS(c)
	if err != nil {
		return nil, err
	}
	id, err := nodeID(dir, c.String("node-id"))
	if err != nil {
		return nil, err
	}
	if cs.mux, err = cluster.ListenTLS(raftAddr, c.String("raft-advertise"), tc); err != nil {
		if errors.Is(err, cluster.ErrInvalidConfig) {
			return nil, usageError("--raft-advertise: %v", err)
		}
		return nil, fmt.Errorf("--raft: %w", err)
	}
	cs.raft = store.DefaultRaftConfig()
	cs.raft.NodeID = id
	cs.raft.WorkerHeartbeat, cs.raft.NodeTTL = c.Duration("worker-heartbeat"), c.Duration("node-ttl")
	cs.raft.HeartbeatTimeout, cs.raft.ElectionTimeout, cs.raft.LeaderLeaseTimeout = timings.HeartbeatTimeout, timings.ElectionTimeout, timings.LeaderLeaseTimeout
	cs.cfg.BootstrapExpect, cs.cfg.Join = expect, join
	return cs, nil
}

// clusterTLS reads --cluster-tls-cert/-key/-ca (nil when none is given);
// a bad or missing file is a usage error naming its flag.
func clusterTLS(c *cli.Context) (*cluster.TLSConfig, error) {
	files := cluster.TLSFiles{Cert: c.String("cluster-tls-cert"), Key: c.String("cluster-tls-key"), CA: c.String("cluster-tls-ca")}
	if files == (cluster.TLSFiles{}) {
		return nil, nil
	}
	tc, err := cluster.LoadTLS(files)
	var te *cluster.TLSError
	if errors.As(err, &te) {
		msg := te.Err.Error()
		if te.Path != "" {
			msg = fmt.Sprintf("%s: %s", te.Path, msg)
		}
		return nil, usageError("--cluster-tls-%s: %s", te.Field, msg)
	}
	return tc, err
}

// apiURL is the URL other servers reach this one's API by.
func apiURL(c *cli.Context, scheme string) (string, error) {
	if u := c.String("api-advertise"); u != "" {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return "", usageError("--api-advertise %q: want http://HOST:PORT or https://HOST:PORT", u)
		}
		return strings.TrimRight(u, "/"), nil
	}
	host, port, err := net.SplitHostPort(c.String("listen"))
	if err != nil {
		return "", usageError("--listen %q: %v", c.String("listen"), err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if c.IsSet("raft") {
			return "", usageError("--listen %q names no host: give --api-advertise URL for the other servers", c.String("listen"))
		}
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// diskCheck is a worker's DiskCheck for dirs (the data dir, the blob dir,
// which may be a mount of its own): a reason while one's file system has
// less than min bytes free for unprivileged writers.
func diskCheck(min int64, dirs ...string) func() string {
	if min <= 0 {
		return nil
	}
	return func() string {
		for _, dir := range dirs {
			var fs syscall.Statfs_t
			if err := syscall.Statfs(dir, &fs); err != nil {
				continue // unknown: do not keep work away on a failed check
			}
			if free := int64(fs.Bavail) * int64(fs.Bsize); free < min {
				return fmt.Sprintf("%d MiB free under %s, less than %d MiB", free>>20, dir, min>>20)
			}
		}
		return ""
	}
}
