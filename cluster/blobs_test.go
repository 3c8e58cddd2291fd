package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skiffml/skiff/cluster/tlstest"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/store/blob/gc"
)

// blobNode is a cluster node with its local blob store and replicated
// blob store.
type blobNode struct {
	*testNode
	local *blob.Store
	blobs *Blobs
	reg   *prometheus.Registry
	stop  context.CancelFunc
}

// startBlobCluster starts n nodes that form one cluster, each with a
// replicated blob store (repair every repair; 0 none).
func startBlobCluster(t *testing.T, n int, repair time.Duration) []*blobNode {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		m, err := Listen("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = m.Addr()
		m.Close() // only to reserve distinct addresses below
	}
	nodes := make([]*blobNode, n)
	for i := range nodes {
		nodes[i] = &blobNode{testNode: startNodeAt(t, addrs[i], fmt.Sprintf("n%d", i), n, addrs...)}
		nodes[i].startBlobs(t, repair)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = nd.Form(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a leader", func() error {
		tns := make([]*testNode, n)
		for i, nd := range nodes {
			tns[i] = nd.testNode
		}
		_, err := leaderOf(tns...)
		return err
	})
	return nodes
}

func (nd *blobNode) startBlobs(t *testing.T, repair time.Duration) {
	t.Helper()
	local, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultBlobsConfig()
	cfg.RepairInterval, cfg.IdleTimeout = repair, 5*time.Second
	nd.reg = prometheus.NewRegistry()
	cfg.Registerer = nd.reg
	if nd.blobs, err = NewBlobs(cfg, nd.Node, local); err != nil {
		t.Fatal(err)
	}
	nd.local = local
	var ctx context.Context
	ctx, nd.stop = context.WithCancel(context.Background())
	nd.blobs.Serve(ctx)
	t.Cleanup(nd.stop)
}

// kill stops the node: its cluster port, raft and blob store go away.
func (nd *blobNode) kill() {
	nd.stop()
	nd.Close()
	_ = nd.mux.Close()
	_ = nd.st.Close()
}

func putBlob(t *testing.T, s *blob.Store, content string) string {
	t.Helper()
	ref, err := s.Put(context.Background(), strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return ref.Digest
}

func readBlob(s *blob.Store, digest string) (string, error) {
	rc, err := s.Open(context.Background(), digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// refer commits a run whose outputs are the blobs digests, so that the
// state refers to them (repair and gc act on what it refers to).
func refer(t *testing.T, nodes []*blobNode, id string, digests ...string) {
	t.Helper()
	outs := map[string]spec.Value{}
	for i, d := range digests {
		outs[fmt.Sprint("a", i)] = spec.Value{Artifact: &spec.ArtifactRef{Digest: d}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eventually(t, "run "+id+" committed", func() error {
		for _, nd := range nodes {
			if nd.st.IsLeader() {
				_, err := nd.st.Apply(ctx, store.CreateRun{Run: store.Run{ID: id, Name: id, State: spec.RunSucceeded,
					CreatedAt: time.Now().UTC(), Plan: []byte(`{"name":"p"}`), Outputs: outs}, TaskNames: []string{"t"}})
				return err
			}
		}
		return errors.New("no leader")
	})
	eventually(t, "run "+id+" everywhere", func() error {
		for _, nd := range nodes {
			if refs, err := nd.st.BlobRefs(nil); err != nil || refs[digests[0]] == "" {
				return fmt.Errorf("%s: refs %v, %v", nd.ID(), refs, err)
			}
		}
		return nil
	})
}

// TestBlobs_ReplicatedToAMajoritySurviveTheProducer: a blob replicated
// from node A is held by a majority of voters and recorded so on every
// node; once A is gone, both other nodes read it (one holds it, the
// other fetches it from that holder and keeps a verified copy); repair
// makes the node left without a copy a holder, with the figures in its
// status and metrics.
func TestBlobs_ReplicatedToAMajoritySurviveTheProducer(t *testing.T) {
	nodes := startBlobCluster(t, 3, 0)
	a := nodes[0]
	content := strings.Repeat("an artifact that outlives its node ", 20000)
	d := putBlob(t, a.local, content)
	logs := putBlob(t, a.local, "step log\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.blobs.Replicate(ctx, []string{d, logs, blob.EmptyDigest, d}); err != nil {
		t.Fatal(err)
	}
	refer(t, nodes, "r1", d, logs)
	var holders []string
	for _, nd := range nodes {
		eventually(t, "holders recorded on "+nd.ID(), func() error {
			hs, err := nd.st.Holders(d)
			if err != nil || len(hs) < 2 || !slices.Contains(hs, "n0") {
				return fmt.Errorf("holders %v, %v", hs, err)
			}
			holders = hs
			return nil
		})
	}
	held := 0
	for _, nd := range nodes {
		if nd.local.Has(d) != slices.Contains(holders, nd.ID()) {
			t.Fatalf("%s: has %v, recorded holders %v", nd.ID(), nd.local.Has(d), holders)
		}
		if nd.local.Has(d) {
			held++
		}
	}
	if held < 2 {
		t.Fatalf("held by %d nodes, want a majority of 3", held)
	}
	if got := counterValue(a.blobs.m.bytes.WithLabelValues("sent")); got <= 0 {
		t.Errorf("sent bytes metric %v", got)
	}

	// Every node's worker is registered; n0's is declared down once it
	// is gone (what the leader's dispatcher does when its lease lapses).
	t0 := time.Now().UTC()
	for _, nd := range nodes {
		if _, err := nd.ProposeWorker(ctx, store.RegisterNode{Node: store.Node{ID: nd.ID(), Executors: []string{"sim"}}, Epoch: 1, Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	a.kill()
	eventually(t, "n0 declared down", func() error {
		l, err := leaderOf(nodes[1].testNode, nodes[2].testNode)
		if err != nil {
			return err
		}
		res, err := l.st.Apply(ctx, store.MarkNodeDown{NodeID: "n0", Epoch: 1, LastHeartbeat: t0, Time: t0, Reason: "test"})
		if err == nil && len(res.Rejected) > 0 {
			err = errors.New(res.Rejected[0].Reason)
		}
		return err
	})
	for _, nd := range nodes[1:] {
		got, err := readBlob(nd.local, d)
		if err != nil || got != content {
			t.Fatalf("%s reads %d bytes, %v", nd.ID(), len(got), err)
		}
		if !nd.local.Has(d) {
			t.Fatalf("%s did not keep the fetched copy", nd.ID())
		}
		// The log, materialised as a worker does a step's input, on a
		// node that may lack it: it comes from a holder the same way.
		dst := filepath.Join(t.TempDir(), "in", "log.txt")
		if err := nd.local.Materialize(ctx, spec.ArtifactRef{Digest: logs}, dst); err != nil {
			t.Fatalf("%s materialise: %v", nd.ID(), err)
		}
		if b, err := os.ReadFile(dst); err != nil || string(b) != "step log\n" {
			t.Fatalf("%s materialised %q, %v", nd.ID(), b, err)
		}
	}

	// Repair: n0 is still a voter but unreachable, so only one live voter
	// holds the blob by record; the other live one fetches and records.
	var lacking *blobNode
	for _, nd := range nodes[1:] {
		if !slices.Contains(holders, nd.ID()) {
			lacking = nd
		}
	}
	if lacking == nil {
		t.Fatalf("every node held the blob: %v", holders)
	}
	eventually(t, "repair records "+lacking.ID(), func() error {
		st := lacking.blobs.RepairOnce(ctx)
		hs, _ := lacking.st.Holders(d)
		if !slices.Contains(hs, lacking.ID()) || st.Pending != 0 {
			return fmt.Errorf("holders %v, status %+v", hs, st)
		}
		return nil
	})
	if got := counterValue(lacking.blobs.m.bytes.WithLabelValues("received")); got <= 0 {
		t.Errorf("received bytes metric %v", got)
	}
	if info := lacking.Info(); info.Blobs == nil || info.Blobs.BytesReceived == 0 {
		t.Errorf("info blobs %+v", info.Blobs)
	}
}

// TestBlobs_RepairRefetchesWhatANodeLost: a node recorded as a holder
// that lost its copy (a wiped disk) fetches it again in the background.
func TestBlobs_RepairRefetchesWhatANodeLost(t *testing.T) {
	nodes := startBlobCluster(t, 3, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := putBlob(t, nodes[0].local, "repaired content")
	if err := nodes[0].blobs.Replicate(ctx, []string{d}); err != nil {
		t.Fatal(err)
	}
	refer(t, nodes, "r1", d)
	if err := nodes[0].local.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n0 repaired", func() error {
		if st := nodes[0].blobs.Status(); !nodes[0].local.Has(d) || st.Repaired == 0 {
			return fmt.Errorf("not yet; status %+v", st)
		}
		return nil
	})
}

// TestBlobs_TransfersRefuseBadBytesAndHostileRequests: a holder whose
// copy is corrupt gives nothing the fetching node keeps; requests with
// hostile digests, unknown ops or lying sizes are refused by the serving
// node without touching its store.
func TestBlobs_TransfersRefuseBadBytesAndHostileRequests(t *testing.T) {
	nodes := startBlobCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, dst := nodes[0], nodes[1]
	d := putBlob(t, src.local, strings.Repeat("x", 10000))
	h, _ := blob.ParseDigest(d)
	p := filepath.Join(src.local.Dir(), "sha256", h[:2], h)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(raw)
	bad[len(bad)-5] ^= 0xff
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dst.blobs.get(ctx, src.mux.Addr(), d); !errors.Is(err, blob.ErrCorrupt) {
		t.Fatalf("fetch of a corrupt copy: %v", err)
	}
	if dst.local.Has(d) {
		t.Fatal("the corrupt copy was kept")
	}
	if err := os.WriteFile(p, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dst.blobs.get(ctx, src.mux.Addr(), d); !errors.Is(err, blob.ErrCorrupt) {
		t.Fatalf("fetch of a truncated copy: %v", err)
	}

	raw2 := func(req blobRequest, body []byte) blobReply {
		t.Helper()
		conn, err := dst.mux.dial(src.mux.Addr(), connBlob, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(conn, req); err != nil {
			t.Fatal(err)
		}
		var rep blobReply
		if err := readFrame(conn, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Send {
			_, _ = conn.Write(body)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			rep = blobReply{}
			if err := readFrame(conn, &rep); err != nil {
				t.Fatal(err)
			}
		}
		return rep
	}
	other := putBlob(t, dst.local, "pushed content")
	otherRaw, _, err := dst.local.OpenStored(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	otherBytes, _ := io.ReadAll(otherRaw)
	otherRaw.Close()
	missing := "sha256:" + strings.Repeat("0", 64)
	for name, c := range map[string]struct {
		req  blobRequest
		body []byte
	}{
		"traversal digest":   {blobRequest{Op: blobGet, Digest: "sha256:../../../etc/passwd"}, nil},
		"path digest":        {blobRequest{Op: blobPut, Digest: "../" + h, Size: 10}, nil},
		"unknown op":         {blobRequest{Op: "delete", Digest: d}, nil},
		"zero size":          {blobRequest{Op: blobPut, Digest: missing, Size: 0}, nil},
		"huge size":          {blobRequest{Op: blobPut, Digest: missing, Size: 1 << 62}, nil},
		"missing blob":       {blobRequest{Op: blobGet, Digest: missing}, nil},
		"bytes of another":   {blobRequest{Op: blobPut, Digest: missing, Size: int64(len(otherBytes))}, otherBytes},
		"short of its size":  {blobRequest{Op: "put", Digest: other, Size: int64(len(otherBytes)) + 10}, otherBytes},
		"truncated from put": {blobRequest{Op: "put", Digest: other, Size: int64(len(otherBytes))}, otherBytes[:len(otherBytes)-3]},
	} {
		if rep := raw2(c.req, c.body); rep.Error == "" {
			t.Errorf("%s: accepted: %+v", name, rep)
		}
	}
	if src.local.Has(missing) || src.local.Has(other) {
		t.Fatal("a refused put was stored")
	}
	// The same push, whole, is taken.
	if rep := raw2(blobRequest{Op: blobPut, Digest: other, Size: int64(len(otherBytes))}, otherBytes); rep.Error != "" || !src.local.Has(other) {
		t.Fatalf("a good put: %+v", rep)
	}
}

// FuzzDecodeBlobRequest: whatever a peer sends as a request, decoding
// never panics, and what it accepts names a valid digest and a known op.
func FuzzDecodeBlobRequest(f *testing.F) {
	for _, r := range []blobRequest{
		{Op: blobGet, Digest: "sha256:" + strings.Repeat("a", 64)},
		{Op: blobPut, Digest: "sha256:" + strings.Repeat("b", 64), Size: 9},
		{Op: blobPut, Digest: "sha256:../x", Size: -1},
	} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, r); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xff, 0xff, '{'})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeBlobRequest(bytes.NewReader(data), 1<<20)
		if err != nil {
			return
		}
		if _, err := blob.ParseDigest(req.Digest); err != nil || (req.Op != blobGet && req.Op != blobPut) ||
			(req.Op == blobPut && (req.Size <= 0 || req.Size > 1<<20)) {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestBlobs_GCOnEveryNodeDropsItsHolderRecords: each node's collection
// deletes the replicated blobs nothing refers to and records that it no
// longer holds them, so repair does not fetch them again; a blob a run
// refers to stays on every holder.
func TestBlobs_GCOnEveryNodeDropsItsHolderRecords(t *testing.T) {
	nodes := startBlobCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kept := putBlob(t, nodes[0].local, "referenced")
	garbage := putBlob(t, nodes[0].local, "garbage")
	if err := nodes[0].blobs.Replicate(ctx, []string{kept, garbage}); err != nil {
		t.Fatal(err)
	}
	refer(t, nodes, "r1", kept)
	for _, nd := range nodes {
		cfg := gc.DefaultConfig(nd.st, nd.local)
		cfg.Grace, cfg.Dropped = 0, nd.blobs.Dropped
		if _, err := gc.Collect(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if nd.local.Has(garbage) {
			t.Fatalf("%s kept the garbage", nd.ID())
		}
		// Another node may still hold it (its collection comes later):
		// repair must not fetch it back, nothing refers to it.
		eventually(t, nd.ID()+"'s drop applied", func() error {
			if hs, _ := nd.st.Holders(garbage); slices.Contains(hs, nd.ID()) {
				return fmt.Errorf("holders %v", hs)
			}
			return nil
		})
		if nd.blobs.RepairOnce(ctx); nd.local.Has(garbage) {
			t.Fatalf("%s: repair fetched the garbage back from a holder that has not collected yet", nd.ID())
		}
	}
	eventually(t, "the garbage's holders dropped", func() error {
		for _, nd := range nodes {
			if hs, _ := nd.st.Holders(garbage); hs != nil {
				return fmt.Errorf("%s: holders %v", nd.ID(), hs)
			}
			if hs, _ := nd.st.Holders(kept); len(hs) < 2 {
				return fmt.Errorf("%s: holders of the kept blob %v", nd.ID(), hs)
			}
		}
		return nil
	})
	for _, nd := range nodes {
		if st := nd.blobs.RepairOnce(ctx); nd.local.Has(garbage) || st.LastError != "" {
			t.Fatalf("%s: repair brought the garbage back (%+v)", nd.ID(), st)
		}
	}
	held := 0
	for _, nd := range nodes {
		if nd.local.Has(kept) {
			held++
		}
	}
	if held < 2 {
		t.Fatalf("the referenced blob is on %d nodes", held)
	}
}

// TestBlobs_TransfersNeedTheClusterCertificate: over a TLS cluster port a
// node whose certificate the cluster's CA signed fetches a blob; one with
// another CA's certificate gets nothing.
func TestBlobs_TransfersNeedTheClusterCertificate(t *testing.T) {
	ca, other := tlstest.NewCA(t, "cluster-ca"), tlstest.NewCA(t, "rogue-ca")
	srv := &blobNode{testNode: startTLSNode(t, "127.0.0.1:0", "n0", nodeTLS(t, ca, "n0"), 1)}
	if err := srv.Form(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.startBlobs(t, 0)
	d := putBlob(t, srv.local, "over mutual TLS")
	member := &blobNode{testNode: startTLSNode(t, "127.0.0.1:0", "n1", nodeTLS(t, ca, "n1"), 0)}
	member.startBlobs(t, 0)
	rogue := &blobNode{testNode: startTLSNode(t, "127.0.0.1:0", "rogue", nodeTLS(t, other, "rogue"), 0)}
	rogue.startBlobs(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := member.blobs.get(ctx, srv.mux.Addr(), d); err != nil {
		t.Fatalf("member fetch over TLS: %v", err)
	}
	if got, err := readBlob(member.local, d); err != nil || got != "over mutual TLS" {
		t.Fatalf("member read %q, %v", got, err)
	}
	if err := rogue.blobs.get(ctx, srv.mux.Addr(), d); err == nil || rogue.local.Has(d) {
		t.Fatalf("a node with another CA's certificate fetched the blob (%v)", err)
	}
}
