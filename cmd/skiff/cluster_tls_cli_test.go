package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/cluster/tlstest"
)

// TestServer_ClusterTLSFlagsNameTheBadFile: a missing or bad TLS file
// stops the server before it starts, with exit code 2 and an error naming
// the flag (and the file).
func TestServer_ClusterTLSFlagsNameTheBadFile(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	good := ca.WriteNode(t, dir, "n0", tlstest.Opts{})
	rogue := other.WriteNode(t, t.TempDir(), "r0", tlstest.Opts{})
	missing := filepath.Join(dir, "missing.pem")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"cert missing":       {[]string{"--cluster-tls-cert", missing, "--cluster-tls-key", good.Key, "--cluster-tls-ca", good.CA}, "--cluster-tls-cert: " + missing},
		"key is the cert":    {[]string{"--cluster-tls-cert", good.Cert, "--cluster-tls-key", good.Cert, "--cluster-tls-ca", good.CA}, "--cluster-tls-key: " + good.Cert},
		"no ca":              {[]string{"--cluster-tls-cert", good.Cert, "--cluster-tls-key", good.Key}, "--cluster-tls-ca: required"},
		"another CA's cert":  {[]string{"--cluster-tls-cert", rogue.Cert, "--cluster-tls-key", rogue.Key, "--cluster-tls-ca", good.CA}, "--cluster-tls-cert: " + rogue.Cert},
		"tls without --raft": {[]string{"--cluster-tls-cert", good.Cert}, "--cluster-tls-cert needs --raft"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"server", "--no-auth", "--listen", "127.0.0.1:0"}
			if !strings.Contains(tc.want, "needs --raft") {
				args = append(args, "--raft", "127.0.0.1:0", "--raft-advertise", "127.0.0.1:1")
			}
			data := t.TempDir()
			r := skiff(t, data, append(args, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 naming %q", r.code, r.stderr, tc.want)
			}
			// Refused before anything was written: no node id kept.
			if _, err := os.Stat(filepath.Join(data, nodeIDFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused start kept a node id (%v)", err)
			}
		})
	}
}
