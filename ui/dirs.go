package ui

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/skiffml/skiff/store/blob"
)

// dirEntry is one file or folder of a directory artifact.
type dirEntry struct {
	Name  string // the path inside the directory
	Depth int
	Dir   bool
	Size  int64
	Href  string // the file's view ("" for a folder)
	// Download is the file's download link.
	Download string
}

// maxDirEntries bounds a directory artifact's listing.
const maxDirEntries = 1000

// listDir reads the tar stream of a directory artifact: its entries (at
// most maxDirEntries) and whether there were more.
func listDir(ctx context.Context, blobs *blob.Store, digest, base string) ([]dirEntry, bool, error) {
	rc, err := blobs.Open(ctx, digest)
	if err != nil {
		return nil, false, fmt.Errorf("%w: artifact %s: %v", ErrNotFound, digest, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []dirEntry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, false, nil
		}
		if err != nil {
			return out, false, fmt.Errorf("artifact %s: not a directory archive: %w", digest, err)
		}
		if len(out) == maxDirEntries {
			return out, true, nil
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		e := dirEntry{Name: name, Depth: strings.Count(name, "/"), Dir: hdr.Typeflag == tar.TypeDir, Size: hdr.Size}
		if !e.Dir {
			e.Href = base + "?file=" + urlQuery(name)
			e.Download = base + "/raw?file=" + urlQuery(name) + "&download=1"
		}
		out = append(out, e)
	}
}

// openDirFile finds file name in a directory artifact's tar stream and
// returns a reader of it (closing closes the blob) and its size.
func openDirFile(ctx context.Context, blobs *blob.Store, digest, name string) (io.ReadCloser, int64, error) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	rc, err := blobs.Open(ctx, digest)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: artifact %s: %v", ErrNotFound, digest, err)
	}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			rc.Close()
			if errors.Is(err, io.EOF) {
				return nil, 0, fmt.Errorf("%w: file %q: not in this directory", ErrNotFound, name)
			}
			return nil, 0, err
		}
		if hdr.Typeflag == tar.TypeReg && path.Clean(hdr.Name) == name {
			return struct {
				io.Reader
				io.Closer
			}{tr, rc}, hdr.Size, nil
		}
	}
}
