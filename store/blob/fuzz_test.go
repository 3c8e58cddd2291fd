package blob

import (
	"archive/tar"
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// FuzzUntar feeds arbitrary bytes to Materialize's tar unpacker: it must
// never panic and never write outside the destination.
func FuzzUntar(f *testing.F) {
	f.Add(tarOf(f, &tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 3, Mode: 0o755}))
	f.Add(tarOf(f, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(tarOf(f, &tar.Header{Name: "../x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(tarOf(f, &tar.Header{Name: "/abs", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(tarOf(f, &tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: ".."}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dst := filepath.Join(base, "p", "dst")
		_ = untar(context.Background(), bytes.NewReader(data), dst, 1<<20)
		assertOnlyUnder(t, base, dst)
	})
}
