package blob

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// epoch is the modification time of every entry of a directory's tar stream.
var epoch = time.Unix(0, 0).UTC()

// writeTar writes the deterministic tar stream of the directory dir of
// fsys: entries in lexical path order (fs.WalkDir's order), names relative
// to dir with '/' separators and a trailing '/' for directories, zero times
// and owners, and normalised modes. dir itself is not an entry.
func writeTar(ctx context.Context, w io.Writer, fsys fs.FS, dir string) error {
	tw := tar.NewWriter(w)
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		name := p
		if dir != "." {
			name = strings.TrimPrefix(p, dir+"/")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case info.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
			if info.Mode().Perm()&0o111 != 0 {
				hdr.Mode = 0o755
			}
		default:
			return fmt.Errorf("%s: %w: %s", p, ErrUnsupported, fileKind(info.Mode()))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// A file that grew or shrank since Lstat fails here: tar sizes are fixed.
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// untar unpacks the tar stream r into dst, which is created if missing.
// Only regular files and directories are accepted (no links, devices,
// FIFOs or sparse files), each file at most maxEntry bytes; names must be
// local (no absolute names, no ".." components). All writes go through an
// os.Root, so even a symbolic link already inside dst cannot lead a write
// outside it. Files are created exclusively: a duplicate entry is an error.
func untar(ctx context.Context, r io.Reader, dst string, maxEntry int64) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if err := checkHeader(hdr, maxEntry); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name == "." {
				continue
			}
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeEntry(root, name, hdr, tr); err != nil {
				return err
			}
		}
	}
}

// checkHeader refuses every entry but a directory or a plain regular file
// of at most maxEntry bytes.
func checkHeader(hdr *tar.Header, maxEntry int64) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
	case tar.TypeReg:
		// archive/tar reports a PAX-format sparse file as a regular file
		// whose GNU.sparse.* records say where its holes are.
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return fmt.Errorf("tar entry %q: %w: sparse file", hdr.Name, ErrUnsupported)
			}
		}
		if hdr.Size > maxEntry {
			return fmt.Errorf("tar entry %q: %w: %d bytes, over the limit of %d bytes (MaxEntrySize)", hdr.Name, ErrTooLarge, hdr.Size, maxEntry)
		}
	default:
		return fmt.Errorf("tar entry %q: %w: %s", hdr.Name, ErrUnsupported, entryKind(hdr.Typeflag))
	}
	return nil
}

// entryKind names a tar entry type for an error.
func entryKind(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "named pipe"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("entry type %q", t)
}

// entryName checks a tar entry's name and returns it cleaned, in the host's
// separator.
func entryName(raw string) (string, error) {
	name := strings.TrimSuffix(raw, "/")
	if name == "" && raw != "" {
		return ".", nil // "/" alone: the root; harmless for a directory
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") ||
		!filepath.IsLocal(filepath.FromSlash(name)) {
		return "", fmt.Errorf("tar entry %q: %w: name escapes the destination", raw, ErrUnsupported)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("tar entry %q: %w: name escapes the destination", raw, ErrUnsupported)
		}
	}
	return filepath.Clean(filepath.FromSlash(name)), nil
}

func writeEntry(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	if name == "." {
		return fmt.Errorf("tar entry %q: %w: a file cannot be the destination", hdr.Name, ErrUnsupported)
	}
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
