package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits on a pipeline_files bundle: what a client may send with a run
// (the JSON body limit bounds it too) and what it may unpack to.
const (
	MaxBundleBytes         = 4 << 20
	MaxBundleUnpackedBytes = 64 << 20
	MaxBundleFiles         = 2000
)

// unpackBundle unpacks a run's pipeline_files (a gzip-compressed tar of
// the files beside its pipeline) into the namespace's workspace and
// returns the directory, which {{pipeline.dir}} names for the run. The
// directory is named by the bundle's digest, so the same files sent again
// are unpacked once. The tar is hostile: only regular files and
// directories with local names are accepted, every write goes through an
// os.Root of a fresh staging directory, and the staging directory is
// renamed into place only when everything was written.
func (s *Server) unpackBundle(ns string, data []byte) (string, error) {
	if s.cfg.WorkspaceDir == "" {
		return "", badRequest("pipeline_files: this server keeps no workspace for uploaded pipeline files; put what the pipeline reads from {{pipeline.dir}} into its steps' images")
	}
	if !validNamespace(ns) { // a path component below; checked again here
		return "", badRequest("namespace: %q is not a valid namespace", ns)
	}
	if len(data) > MaxBundleBytes {
		return "", tooLarge("pipeline_files: %d bytes, more than the limit of %d", len(data), MaxBundleBytes)
	}
	sum := sha256.Sum256(data)
	nsDir := filepath.Join(s.cfg.WorkspaceDir, ns)
	final := filepath.Join(nsDir, hex.EncodeToString(sum[:]))
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	if err := os.MkdirAll(nsDir, 0o700); err != nil {
		return "", fmt.Errorf("pipeline_files: workspace: %w", err)
	}
	stage, err := os.MkdirTemp(nsDir, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("pipeline_files: workspace: %w", err)
	}
	defer os.RemoveAll(stage) // a no-op once renamed
	if err := extractBundle(stage, data); err != nil {
		return "", err
	}
	if err := os.Rename(stage, final); err != nil {
		if fi, serr := os.Stat(final); serr == nil && fi.IsDir() {
			return final, nil // the same bundle, unpacked by another request
		}
		return "", fmt.Errorf("pipeline_files: workspace: %w", err)
	}
	return final, nil
}

// ExtractBundle writes a pipeline_files bundle's files under dir (empty),
// with the API's checks: what a worker uses to unpack a run's files kept
// in the store (worker.Config.UnpackWorkspace).
func ExtractBundle(dir string, data []byte) error { return extractBundle(dir, data) }

// extractBundle writes the bundle's files under dir.
func extractBundle(dir string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("pipeline_files: workspace: %w", err)
	}
	defer root.Close()
	return walkBundle(data, func(name string, dirEntry bool, mode fs.FileMode, body io.Reader) error {
		if dirEntry {
			return root.MkdirAll(name, 0o755)
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// walkBundle checks each entry of a bundle and calls fn for it; it stops
// at the first bad entry, naming it.
func walkBundle(data []byte, fn func(name string, dir bool, mode fs.FileMode, body io.Reader) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return badRequest("pipeline_files: not a gzip-compressed tar: %v", err)
	}
	tr := tar.NewReader(zr)
	var total int64
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badRequest("pipeline_files: not a gzip-compressed tar: %v", err)
		}
		if n >= MaxBundleFiles {
			return tooLarge("pipeline_files: more than %d entries", MaxBundleFiles)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !validBundleName(name) {
			return badRequest("pipeline_files: entry %q: not a relative path inside the pipeline's directory", h.Name)
		}
		if seen[name] {
			return badRequest("pipeline_files: entry %q: given twice", h.Name)
		}
		seen[name] = true
		var isDir bool
		switch h.Typeflag {
		case tar.TypeDir:
			isDir = true
		case tar.TypeReg:
		default:
			return badRequest("pipeline_files: entry %q: only regular files and directories are accepted", h.Name)
		}
		total += h.Size
		if h.Size < 0 || total > MaxBundleUnpackedBytes {
			return tooLarge("pipeline_files: more than %d bytes unpacked", MaxBundleUnpackedBytes)
		}
		mode := fs.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		if err := fn(name, isDir, mode, io.LimitReader(tr, h.Size)); err != nil {
			var ae *Error
			if errors.As(err, &ae) {
				return err
			}
			return badRequest("pipeline_files: entry %q: %v", h.Name, err)
		}
	}
}

// validBundleName accepts a slash-separated relative name with no empty,
// dot or dot-dot element and no backslash.
func validBundleName(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") || !fs.ValidPath(name) || name == "." {
		return false
	}
	return filepath.IsLocal(filepath.FromSlash(name))
}
