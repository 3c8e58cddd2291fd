package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/cluster/tlstest"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/clustertest"
)

// nodeTLS returns a TLSConfig for a node certificate signed by ca.
func nodeTLS(tb testing.TB, ca *tlstest.CA, cn string) *TLSConfig {
	tb.Helper()
	c, k := ca.Issue(tb, cn, tlstest.Opts{})
	tc, err := ParseTLS(c, k, ca.CertPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return tc
}

// startTLSNode is startNodeAt with a cluster port under tc.
func startTLSNode(tb testing.TB, addr, id string, tc *TLSConfig, expect int, join ...string) *testNode {
	tb.Helper()
	mux, err := ListenTLS(addr, "", tc)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := store.DefaultConfig(filepath.Join(tb.TempDir(), "store"))
	cfg.NoSync = true
	cfg.Raft = clustertest.Timings()
	cfg.Raft.NodeID = id
	cfg.Raft.Transport = mux.Transport(nil)
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ncfg := DefaultConfig("http://api-" + id)
	ncfg.BootstrapExpect, ncfg.Join = expect, join
	ncfg.RetryInterval = 50 * time.Millisecond
	n, err := New(ncfg, st, mux)
	if err != nil {
		tb.Fatal(err)
	}
	n.Serve()
	tb.Cleanup(func() { n.Close(); _ = st.Close(); _ = mux.Close() })
	return &testNode{Node: n, st: st, mux: mux}
}

func reserveAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// TestTLS_ClusterFormsAndReplicatesOverMutualTLS: three nodes whose
// certificates one CA signed form a cluster, elect a leader, replicate a
// configuration change (raft over TLS) and answer each other's RPCs.
func TestTLS_ClusterFormsAndReplicatesOverMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster-ca")
	addrs := reserveAddrs(t, 3)
	nodes := make([]*testNode, 3)
	for i := range nodes {
		nodes[i] = startTLSNode(t, addrs[i], fmt.Sprintf("n%d", i), nodeTLS(t, ca, fmt.Sprintf("n%d", i)), 3, addrs...)
		if !nodes[i].mux.TLS() {
			t.Fatal("ListenTLS gave a plain port")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.Form(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var leader *testNode
	eventually(t, "a leader", func() (err error) { leader, err = leaderOf(nodes...); return })
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	ms, err := follower.Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members: %+v %v", ms, err)
	}
	for _, m := range ms {
		if !m.Reachable {
			t.Errorf("member %s unreachable over TLS: %s", m.ID, m.Error)
		}
	}
	// A fourth node with a certificate from the same CA joins: the
	// configuration entry reaches every node over raft's TLS connections.
	fourth := startTLSNode(t, "127.0.0.1:0", "n3", nodeTLS(t, ca, "n3"), 0, follower.mux.Addr())
	if err := fourth.Form(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range append(nodes, fourth) {
		eventually(t, "four members on "+n.ID(), func() error {
			if ms, _ := n.st.Members(); len(ms) != 4 {
				return fmt.Errorf("members %v", ms)
			}
			if n.st.AppliedIndex() < leader.st.AppliedIndex() {
				return fmt.Errorf("applied %d < leader's %d", n.st.AppliedIndex(), leader.st.AppliedIndex())
			}
			return nil
		})
	}
}

// infoOver sends an info RPC over conn and reads the answer.
func infoOver(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte{connRPC}); err != nil {
		return err
	}
	if err := json.NewEncoder(conn).Encode(rpcRequest{Op: opInfo}); err != nil {
		return err
	}
	var resp rpcResponse
	if err := json.NewDecoder(io.LimitReader(conn, maxRPCBytes)).Decode(&resp); err != nil {
		return err
	}
	var info Info
	if err := json.Unmarshal(resp.Body, &info); err != nil || info.ID == "" {
		return fmt.Errorf("no info in %s (%v)", resp.Body, err)
	}
	return nil
}

// TestTLS_RefusesPeersWithoutACertificateTheCASigned: real handshakes
// against a node's cluster port. Only a client holding a certificate the
// cluster CA signed gets an answer; plain TCP, no certificate, and a
// certificate from another CA are refused, for the node RPC and for raft.
// A dialing node also refuses a server whose certificate the CA did not
// sign.
func TestTLS_RefusesPeersWithoutACertificateTheCASigned(t *testing.T) {
	ca, other := tlstest.NewCA(t, "cluster-ca"), tlstest.NewCA(t, "rogue-ca")
	srv := startTLSNode(t, "127.0.0.1:0", "n0", nodeTLS(t, ca, "n0"), 1)
	if err := srv.Form(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := srv.mux.Addr()
	dialTLS := func(cfg *tls.Config) (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	}

	// The control: a member's certificate gets an answer.
	good := nodeTLS(t, ca, "n1")
	conn, err := dialTLS(good.client())
	if err != nil {
		t.Fatalf("member dial: %v", err)
	}
	if err := infoOver(conn); err != nil {
		t.Fatalf("member info over TLS: %v", err)
	}
	conn.Close()

	t.Run("plain TCP", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := infoOver(conn); err == nil {
			t.Fatal("a plain TCP client got an answer from a TLS cluster port")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg := good.client()
		cfg.Certificates = nil
		conn, err := dialTLS(cfg)
		if err == nil {
			err = infoOver(conn)
			conn.Close()
		}
		if err == nil {
			t.Fatal("a client without a certificate got an answer")
		}
	})
	rogue := nodeTLS(t, other, "rogue")
	t.Run("certificate from another CA", func(t *testing.T) {
		cfg := rogue.client()
		cfg.VerifyConnection = nil // the rogue trusts anyone; the server must not
		conn, err := dialTLS(cfg)
		if err == nil {
			err = infoOver(conn)
			conn.Close()
		}
		if err == nil {
			t.Fatal("a client with another CA's certificate got an answer")
		}
	})
	t.Run("rogue node RPC and raft", func(t *testing.T) {
		n := startTLSNode(t, "127.0.0.1:0", "rogue", rogue, 0, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var info Info
		if err := n.call(ctx, addr, rpcRequest{Op: opInfo}, &info); err == nil {
			t.Fatalf("rogue node RPC answered: %+v", info)
		}
		if err := n.call(ctx, addr, rpcRequest{Op: opJoin, ID: "rogue", RaftAddr: n.mux.Addr()}, nil); err == nil {
			t.Fatal("rogue node joined")
		}
		conn, err := n.mux.dial(addr, connRaft, 5*time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			var b [1]byte
			_, err = conn.Read(b[:])
			conn.Close()
		}
		if err == nil {
			t.Fatal("rogue raft connection was kept open")
		}
		if ms, _ := srv.st.Members(); len(ms) != 1 {
			t.Fatalf("members after the rogue's tries: %v", ms)
		}
	})
	t.Run("dialer refuses a server from another CA", func(t *testing.T) {
		rs := startTLSNode(t, "127.0.0.1:0", "rogue-srv", nodeTLS(t, other, "rogue-srv"), 1)
		_, err := srv.mux.dial(rs.mux.Addr(), connRPC, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "peer certificate") {
			t.Fatalf("dial to a server another CA signed: %v, want a peer certificate error", err)
		}
	})
}

func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestLoadTLS_NamesTheBadInput: each bad input is refused with an error
// naming it (and its file).
func TestLoadTLS_NamesTheBadInput(t *testing.T) {
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	cert, key := ca.Issue(t, "n0", tlstest.Opts{})
	_, key2 := ca.Issue(t, "n1", tlstest.Opts{})
	otherCert, otherKey := other.Issue(t, "x", tlstest.Opts{})
	expCert, expKey := ca.Issue(t, "old", tlstest.Opts{NotAfter: time.Now().Add(-time.Hour)})
	srvCert, srvKey := ca.Issue(t, "srv", tlstest.Opts{Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	dir := t.TempDir()
	f := func(name string, data []byte) string { return writeFile(t, dir, name, data) }
	good := TLSFiles{Cert: f("cert.pem", cert), Key: f("key.pem", key), CA: f("ca.pem", ca.CertPEM)}
	if _, err := LoadTLS(good); err != nil {
		t.Fatalf("good files: %v", err)
	}
	for name, tc := range map[string]struct {
		files TLSFiles
		field string
	}{
		"missing cert file": {TLSFiles{Cert: filepath.Join(dir, "nope.pem"), Key: good.Key, CA: good.CA}, "cert"},
		"no cert given":     {TLSFiles{Key: good.Key, CA: good.CA}, "cert"},
		"cert not PEM":      {TLSFiles{Cert: f("junk.pem", []byte("hello")), Key: good.Key, CA: good.CA}, "cert"},
		"key is a cert":     {TLSFiles{Cert: good.Cert, Key: good.Cert, CA: good.CA}, "key"},
		"key of another":    {TLSFiles{Cert: good.Cert, Key: f("key2.pem", key2), CA: good.CA}, "key"},
		"no ca given":       {TLSFiles{Cert: good.Cert, Key: good.Key}, "ca"},
		"ca not PEM":        {TLSFiles{Cert: good.Cert, Key: good.Key, CA: f("ca-junk.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))}, "ca"},
		"another CA signed": {TLSFiles{Cert: f("o.pem", otherCert), Key: f("ok.pem", otherKey), CA: good.CA}, "cert"},
		"expired":           {TLSFiles{Cert: f("e.pem", expCert), Key: f("ek.pem", expKey), CA: good.CA}, "cert"},
		"server auth only":  {TLSFiles{Cert: f("s.pem", srvCert), Key: f("sk.pem", srvKey), CA: good.CA}, "cert"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadTLS(tc.files)
			var te *TLSError
			if !errors.As(err, &te) || te.Field != tc.field {
				t.Fatalf("err = %v, want a TLSError on %s", err, tc.field)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v does not match ErrInvalidConfig", err)
			}
			want := map[string]string{"cert": tc.files.Cert, "key": tc.files.Key, "ca": tc.files.CA}[tc.field]
			if want != "" && !strings.Contains(err.Error(), want) {
				t.Errorf("%v does not name the file %s", err, want)
			}
		})
	}
}

// FuzzParseTLS: no input panics; a refusal names one of the three fields.
func FuzzParseTLS(f *testing.F) {
	ca := tlstest.NewCA(f, "ca")
	cert, key := ca.Issue(f, "n0", tlstest.Opts{})
	f.Add(cert, key, ca.CertPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), key, ca.CertPEM)
	f.Add(cert, []byte("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n"), cert)
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, c, k, a []byte) {
		tc, err := ParseTLS(c, k, a)
		if err == nil {
			if tc == nil || tc.cert.Leaf == nil {
				t.Fatal("accepted without a leaf certificate")
			}
			return
		}
		var te *TLSError
		if !errors.As(err, &te) || (te.Field != "cert" && te.Field != "key" && te.Field != "ca") {
			t.Fatalf("error %v names no field", err)
		}
	})
}
