package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of node-to-node TLS.
type TLSFiles struct {
	Cert string // this node's certificate (chain), signed by CA
	Key  string // its private key
	CA   string // the cluster's CA certificate(s): a peer must present a certificate it signed
}

// TLSError says which of the TLS inputs is bad ("cert", "key" or "ca")
// and why.
type TLSError struct {
	Field string
	Path  string // the file, when the input came from one
	Err   error
}

func (e *TLSError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("cluster tls %s %s: %v", e.Field, e.Path, e.Err)
	}
	return fmt.Sprintf("cluster tls %s: %v", e.Field, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// Is lets errors.Is(err, ErrInvalidConfig) match a TLSError.
func (e *TLSError) Is(target error) bool { return target == ErrInvalidConfig }

// LoadTLS reads the three files and returns the mutual TLS config of the
// cluster port (ParseTLS). An error is a *TLSError naming the bad file.
func LoadTLS(f TLSFiles) (*TLSConfig, error) {
	read := func(field, path string) ([]byte, error) {
		if path == "" {
			return nil, &TLSError{Field: field, Err: errors.New("required (cert, key and ca go together)")}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &TLSError{Field: field, Path: path, Err: err}
		}
		return b, nil
	}
	cert, err := read("cert", f.Cert)
	if err != nil {
		return nil, err
	}
	key, err := read("key", f.Key)
	if err != nil {
		return nil, err
	}
	ca, err := read("ca", f.CA)
	if err != nil {
		return nil, err
	}
	tc, err := ParseTLS(cert, key, ca)
	var te *TLSError
	if errors.As(err, &te) {
		te.Path = map[string]string{"cert": f.Cert, "key": f.Key, "ca": f.CA}[te.Field]
	}
	return tc, err
}

// TLSConfig is the mutual TLS of the cluster port: every connection, raft's
// and the node RPC's, is TLS 1.3 both ways, and each side must present a
// certificate signed by the cluster's CA. Any certificate the CA signed is
// accepted as a member (host names are not checked: nodes are reached by
// address), so the CA must be one dedicated to the cluster.
type TLSConfig struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// ParseTLS parses PEM: this node's certificate (chain), its private key
// and the CA certificate(s). It checks that the key matches, that the
// certificate is valid now, signed by the CA and usable for both client
// and server authentication. An error is a *TLSError naming the field.
func ParseTLS(certPEM, keyPEM, caPEM []byte) (*TLSConfig, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, &TLSError{Field: "cert", Err: err}
	}
	if !hasPEMBlock(keyPEM, "PRIVATE KEY") {
		return nil, &TLSError{Field: "key", Err: errors.New("no PEM private key block found")}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &TLSError{Field: "key", Err: fmt.Errorf("does not go with the certificate: %w", err)}
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, &TLSError{Field: "ca", Err: err}
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
			return nil, &TLSError{Field: "cert", Err: fmt.Errorf("not valid for the cluster (a node certificate must be signed by the ca, valid now, and allow both server and client auth): %w", err)}
		}
	}
	pair.Leaf = certs[0]
	return &TLSConfig{cert: pair, pool: pool}, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

func hasPEMBlock(data []byte, suffix string) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if len(b.Type) >= len(suffix) && b.Type[len(b.Type)-len(suffix):] == suffix {
			return true
		}
	}
}

// server is the config of the accepting side: a client certificate signed
// by the CA is required.
func (t *TLSConfig) server() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.pool,
	}
}

// client is the config of the dialing side: the server's certificate must
// be signed by the CA (its name is not checked; see TLSConfig).
func (t *TLSConfig) client() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		// The chain is verified below, against the cluster's CA only;
		// what is skipped is the host name check.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("cluster tls: the peer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: t.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("cluster tls: peer certificate: %w", err)
			}
			return nil
		},
	}
}
