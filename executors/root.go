package executors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store/blob"
)

// DefaultMaxOutputBytes is the default limit on one output artifact's
// bytes (a directory's files together).
const DefaultMaxOutputBytes int64 = 10 << 30

// Every host-side access under an execution's root goes through an
// os.Root opened on it: the step owns that directory and may have planted
// symbolic links in it, and no path component may lead out of the root.
// A link that would is an error on the output that names it, never
// followed.

// MaterializeInputs writes every input artifact at InputPath(hostRoot,
// name), creating directories and files through an os.Root on hostRoot.
// Errors name the input.
func MaterializeInputs(ctx context.Context, hostRoot string, ins []ArtifactInput, blobs *blob.Store) error {
	if len(ins) == 0 {
		return nil
	}
	root, err := os.OpenRoot(hostRoot)
	if err != nil {
		return fmt.Errorf("execution root: %w", err)
	}
	defer root.Close()
	for _, in := range ins {
		if err := materializeInput(ctx, root, in, blobs); err != nil {
			return fmt.Errorf("input %q: %w", in.Name, err)
		}
	}
	return nil
}

func materializeInput(ctx context.Context, root *os.Root, in ArtifactInput, blobs *blob.Store) error {
	if !filepath.IsLocal(in.Name) {
		return errors.New("name must be a relative path inside inputs/")
	}
	name := filepath.Join(InputsDir, in.Name)
	if in.EmptyDir {
		return root.MkdirAll(name, 0o755)
	}
	if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	if in.Ref.Dir {
		// Materialize unpacks through an os.Root of its own on the
		// directory, which the line above made inside this root.
		return blobs.Materialize(ctx, in.Ref, filepath.Join(root.Name(), name))
	}
	rc, err := blobs.Open(ctx, in.Ref.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// CollectOutputs reads every output from OutputPath(hostRoot, name) after a
// step exited 0, through an os.Root on hostRoot. A parameter's file is
// parsed by ParseParam; an artifact (a file or a directory) is stored in
// blobs and its ref carries the output's Type. An artifact of more than
// maxBytes bytes (<= 0: DefaultMaxOutputBytes) is refused with
// ErrOutputTooLarge. A missing file, a symbolic link leading out of the
// root (or an artifact that is a link), a parse failure or a store
// failure is an error naming the output, e.g.
// `output "accuracy": expected float, got "abc"`. An output with an
// ExecutorOutput file takes what that file says of it first; an
// artifact's metadata there is recorded in its ref's Metadata.
func CollectOutputs(ctx context.Context, hostRoot string, outs []OutputSpec, blobs *blob.Store, maxBytes int64) (map[string]spec.Value, error) {
	if len(outs) == 0 {
		// Nothing to read: no need to open the root (an open, a stat and
		// a close for every step without outputs).
		return map[string]spec.Value{}, nil
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxOutputBytes
	}
	root, err := os.OpenRoot(hostRoot)
	if err != nil {
		return nil, fmt.Errorf("execution root: %w", err)
	}
	defer root.Close()
	c := &collector{root: root, blobs: blobs, max: maxBytes, eo: map[string]*executorOutput{}}
	vals := make(map[string]spec.Value, len(outs))
	for _, out := range outs {
		v, err := c.collect(ctx, out)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", out.Name, err)
		}
		vals[out.Name] = v
	}
	return vals, nil
}

// collector reads one execution's outputs.
type collector struct {
	root  *os.Root
	blobs *blob.Store
	max   int64
	eo    map[string]*executorOutput // ExecutorOutput files read, by path
}

// outputName is out's file relative to the root.
func outputName(out OutputSpec) string { return path.Join(OutputsDir, out.Name) }

func (c *collector) collect(ctx context.Context, out OutputSpec) (spec.Value, error) {
	if !filepath.IsLocal(out.Name) {
		return spec.Value{}, errors.New("name must be a relative path inside outputs/")
	}
	var meta []byte
	if out.ExecutorOutput != "" {
		v, m, done, err := c.fromExecutorOutput(ctx, out)
		if err != nil || done {
			return v, err
		}
		meta = m
	}
	name := outputName(out)
	switch out.Type.Kind() {
	case spec.KindParameter:
		data, err := c.readParam(name)
		if err != nil {
			return spec.Value{}, err
		}
		parse := ParseParam
		if out.KFPText {
			parse = ParseKFPParam
		}
		raw, err := parse(out.Type, data)
		if err != nil {
			return spec.Value{}, err
		}
		return spec.Value{Param: raw}, nil
	case spec.KindArtifact:
		return c.putArtifact(ctx, out, name, meta)
	default:
		return spec.Value{}, fmt.Errorf("unknown type %q", out.Type)
	}
}

// putArtifact stores the file or directory name (relative to the root) as
// output out's artifact, with metadata meta.
func (c *collector) putArtifact(ctx context.Context, out OutputSpec, name string, meta json.RawMessage) (spec.Value, error) {
	b := &budget{left: c.max}
	ref, err := c.blobs.PutFS(ctx, budgetFS{c.root.FS(), b}, name)
	switch {
	case errors.Is(err, ErrOutputTooLarge):
		return spec.Value{}, fmt.Errorf("%w: more than the limit of %d bytes per output", ErrOutputTooLarge, c.max)
	case err != nil:
		return spec.Value{}, c.pathError(name, err)
	}
	ref.Type = out.Type
	ref.Metadata = meta
	return spec.Value{Artifact: &ref}, nil
}

// readParam reads a parameter (or ExecutorOutput) file of at most
// MaxParamBytes.
func (c *collector) readParam(name string) ([]byte, error) {
	// O_NONBLOCK: a named pipe the step left there must not hang the
	// open; it is refused below as not a regular file.
	f, err := c.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, c.pathError(name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, errors.New("a parameter must be a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxParamBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxParamBytes {
		return nil, fmt.Errorf("parameter file larger than %d bytes; use an artifact", MaxParamBytes)
	}
	return data, nil
}

// pathError says why name could not be read: missing, or a symbolic link
// on its way that leads out of the root (os.Root refused to follow it).
func (c *collector) pathError(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("missing: the step wrote nothing at %s%w", name, errMissing)
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, lerr := c.root.Lstat(p)
		if lerr != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, _ := c.root.Readlink(p)
		if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(p), target)) {
			return fmt.Errorf("%s is a symbolic link to %q, outside the execution's root: not followed", p, target)
		}
		if i == len(parts)-1 && errors.Is(err, blob.ErrUnsupported) {
			return fmt.Errorf("%s is a symbolic link (to %q); an output must be a file or a directory", p, target)
		}
	}
	return err
}

// errMissing marks an output the step did not write; its text is empty
// so that it adds nothing to the message.
var errMissing = missing{}

type missing struct{}

func (missing) Error() string        { return "" }
func (missing) Is(target error) bool { return target == fs.ErrNotExist }

// budget counts the bytes an artifact may still have.
type budget struct{ left int64 }

// budgetFS reads through fsys and fails a read with ErrOutputTooLarge
// once the files read together exceed the budget.
type budgetFS struct {
	fsys fs.FS
	b    *budget
}

func (f budgetFS) Open(name string) (fs.File, error) {
	file, err := f.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	// Refused before reading: a tar stream reads a file's stat size only,
	// so a read error at its very end would go unnoticed.
	if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > f.b.left {
		file.Close()
		return nil, ErrOutputTooLarge
	}
	return budgetFile{file, f.b}, nil
}

func (f budgetFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.fsys, name) }
func (f budgetFS) Stat(name string) (fs.FileInfo, error)      { return fs.Stat(f.fsys, name) }
func (f budgetFS) Lstat(name string) (fs.FileInfo, error)     { return fs.Lstat(f.fsys, name) }
func (f budgetFS) ReadLink(name string) (string, error)       { return fs.ReadLink(f.fsys, name) }

type budgetFile struct {
	fs.File
	b *budget
}

func (f budgetFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.b.left -= int64(n)
	if f.b.left < 0 {
		return n, ErrOutputTooLarge
	}
	return n, err
}
