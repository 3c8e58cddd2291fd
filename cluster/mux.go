package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The first byte of a connection to the cluster port says what it carries.
const (
	connRaft byte = 'R'
	connRPC  byte = 'C'
	// connBlob carries one blob transfer (blobs.go).
	connBlob byte = 'B'
)

// muxHeaderTimeout bounds the wait for a connection's first byte.
const muxHeaderTimeout = 5 * time.Second

// Mux is the cluster port: it accepts connections and hands each to raft's
// transport, to the node RPC or to the blob transfers by its first byte.
type Mux struct {
	ln        net.Listener
	advertise net.Addr
	raftCh    chan net.Conn
	rpcCh     chan net.Conn
	blobCh    chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	tls       *TLSConfig // nil: plain TCP
}

// Listen opens the cluster port on bind. advertise is the address the
// other nodes reach this one by ("" = bind, which must then name a host).
func Listen(bind, advertise string) (*Mux, error) { return ListenTLS(bind, advertise, nil) }

// ListenTLS is Listen with node-to-node mutual TLS (nil: none): every
// connection it accepts or dials, raft's and the node RPC's, must complete
// a TLS handshake with a certificate signed by the cluster's CA before a
// byte of it is read.
func ListenTLS(bind, advertise string, tc *TLSConfig) (*Mux, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", bind, err)
	}
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err == nil && (adv.IP == nil || adv.IP.IsUnspecified() || adv.Port == 0) {
		err = errors.New("give the host and port the other nodes reach this one by")
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: advertise address %q: %w", ErrInvalidConfig, advertise, err)
	}
	m := &Mux{ln: ln, advertise: adv, raftCh: make(chan net.Conn), rpcCh: make(chan net.Conn), blobCh: make(chan net.Conn), closed: make(chan struct{}), tls: tc}
	go m.acceptLoop()
	return m, nil
}

// Addr is the advertised address of the cluster port.
func (m *Mux) Addr() string { return m.advertise.String() }

// TLS reports whether the cluster port uses mutual TLS.
func (m *Mux) TLS() bool { return m.tls != nil }

// Close stops accepting connections.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

func (m *Mux) acceptLoop() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		go m.route(conn)
	}
}

func (m *Mux) route(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(muxHeaderTimeout))
	if m.tls != nil {
		tc := tls.Server(conn, m.tls.server())
		ctx, cancel := context.WithTimeout(context.Background(), muxHeaderTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			// A peer without a certificate the CA signed, or one that
			// does not speak TLS: refused before anything is read.
			conn.Close()
			return
		}
		conn = tc
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	ch := m.rpcCh
	switch b[0] {
	case connRaft:
		ch = m.raftCh
	case connRPC:
	case connBlob:
		ch = m.blobCh
	default:
		conn.Close()
		return
	}
	var wait <-chan time.Time // nil: no limit
	if b[0] == connBlob {
		// A node that serves no blobs (none started) refuses them.
		wait = time.After(muxHeaderTimeout)
	}
	select {
	case ch <- conn:
	case <-m.closed:
		conn.Close()
	case <-wait:
		conn.Close()
	}
}

// dial connects to a cluster port for kind, with this port's TLS.
func (m *Mux) dial(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if m.tls != nil {
		tc := tls.Client(conn, m.tls.client())
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	if _, err := conn.Write([]byte{kind}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Transport returns raft's network transport over the cluster port.
func (m *Mux) Transport(logger hclog.Logger) raft.Transport {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftLayer{m: m},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger,
	})
}

// raftLayer is raft's StreamLayer over the Mux.
type raftLayer struct{ m *Mux }

var _ raft.StreamLayer = (*raftLayer)(nil)

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l *raftLayer) Close() error   { return l.m.Close() }
func (l *raftLayer) Addr() net.Addr { return l.m.advertise }

func (l *raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(string(addr), connRaft, timeout)
}
