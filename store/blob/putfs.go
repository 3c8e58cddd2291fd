package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/skiffml/skiff/engine/spec"
)

// PutFS stores the file or directory name of fsys, as PutPath does for a
// host path: the same digests, a directory as the same tar stream (Dir
// set), and symbolic links (also name itself, when fsys implements
// fs.ReadLinkFS), devices, pipes and sockets refused with ErrUnsupported.
// Every read goes through fsys, so with an os.Root's FS nothing outside
// the root is read, whatever symbolic links the tree holds.
func (s *Store) PutFS(ctx context.Context, fsys fs.FS, name string) (spec.ArtifactRef, error) {
	fi, err := fs.Lstat(fsys, name)
	if err != nil {
		return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w", name, err)
	}
	var ref spec.ArtifactRef
	switch {
	case fi.Mode().IsRegular():
		var f fs.File
		if f, err = fsys.Open(name); err == nil {
			ref, err = s.put(ctx, f)
			f.Close()
		}
	case fi.IsDir():
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(ctx, pw, fsys, name)) }()
		ref, err = s.put(ctx, pr)
		pr.CloseWithError(errors.New("blob: put aborted")) // unblocks the writer on error
		ref.Dir = true
	default:
		err = fmt.Errorf("%w: %s", ErrUnsupported, fileKind(fi.Mode()))
	}
	if err != nil {
		return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w", name, err)
	}
	return ref, nil
}
