package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtractBundle: whatever bytes a client sends as pipeline_files,
// unpacking never panics and never writes outside the staging directory.
func FuzzExtractBundle(f *testing.F) {
	seed := func(entries ...tar.Header) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range entries {
			_ = tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write(make([]byte, h.Size))
			}
		}
		_ = tw.Close()
		_ = zw.Close()
		return buf.Bytes()
	}
	f.Add(seed(tar.Header{Name: "a/b.txt", Typeflag: tar.TypeReg, Size: 3, Mode: 0o755}))
	f.Add(seed(tar.Header{Name: "../x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(seed(tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}, tar.Header{Name: "l/x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(seed(tar.Header{Name: "d", Typeflag: tar.TypeDir}, tar.Header{Name: "d/x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		stage := filepath.Join(parent, "stage")
		if err := os.Mkdir(stage, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = extractBundle(stage, data)
		ents, err := os.ReadDir(parent)
		if err != nil || len(ents) != 1 || ents[0].Name() != "stage" {
			t.Fatalf("extract wrote beside its directory: %v %v", ents, err)
		}
		_ = filepath.Walk(stage, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
				t.Errorf("extract made %s (%v), not a file or directory", p, fi.Mode())
			}
			return nil
		})
	})
}
