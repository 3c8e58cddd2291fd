package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/skiffml/skiff/api"
)

// pipelineDirRefs finds {{pipeline.dir}} and what follows it up to a
// quote, a space or a shell operator.
var pipelineDirRefs = regexp.MustCompile(`\{\{pipeline\.dir\}\}(/[^"'\s;&|<>()]*)?`)

// subPipelineRefs finds the sub-pipeline files a Skiff YAML pipeline
// includes (a task's `pipeline: FILE`).
var subPipelineRefs = regexp.MustCompile(`(?m)^[ \t]*(?:-[ \t]+)?pipeline:[ \t]*["']?([^"'\s#]+)`)

// checkNoSubPipelines refuses, before submitting to a server, a pipeline
// that includes sub-pipeline files: the server compiles the pipeline's
// text alone and cannot read them.
func checkNoSubPipelines(file string, text []byte) error {
	m := subPipelineRefs.FindSubmatch(text)
	if m == nil {
		return nil
	}
	return usageError("%s: it includes the sub-pipeline file %s, which a server cannot read (only the files named with %s are sent): run it without --server, or inline the sub-pipeline's tasks", file, m[1], pipelineDirRef)
}

// bundleRefs lists the paths (slash-separated, relative to the pipeline's
// directory, "." for all of it) that a pipeline's text names with
// {{pipeline.dir}}. A path that goes on with another placeholder stands
// for its static directory.
func bundleRefs(text []byte) ([]string, error) {
	set := map[string]bool{}
	for _, m := range pipelineDirRefs.FindAllSubmatch(text, -1) {
		rel := strings.TrimPrefix(string(m[1]), "/")
		if i := strings.Index(rel, "{{"); i >= 0 {
			rel = path.Dir(rel[:i] + "x")
		}
		rel = strings.TrimSuffix(path.Clean("./"+rel), "/")
		if rel != "." && !filepath.IsLocal(filepath.FromSlash(rel)) {
			return nil, fmt.Errorf("%s/%s: leads out of the pipeline's directory", pipelineDirRef, rel)
		}
		set[rel] = true
	}
	if set["."] {
		return []string{"."}, nil
	}
	refs := make([]string, 0, len(set))
	for r := range set {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	return refs, nil
}

// bundlePipelineFiles packs the files that FILE's pipeline names with
// {{pipeline.dir}} into a gzip-compressed tar for a server (the run's
// pipeline_files). Files are read through an os.Root of the pipeline's
// directory: a symbolic link, or a path leading out of it, is refused.
// The tar is deterministic (sorted names, no times), so the server
// unpacks the same files once.
func bundlePipelineFiles(file string, text []byte) ([]byte, error) {
	refs, err := bundleRefs(text)
	if err != nil {
		return nil, usageError("%s: %v", file, err)
	}
	root, err := os.OpenRoot(filepath.Dir(file))
	if err != nil {
		return nil, usageError("%s: %v", file, err)
	}
	defer root.Close()
	files := map[string]bool{}
	for _, ref := range refs {
		if err := collectBundle(root, ref, files); err != nil {
			return nil, usageError("%s: %s/%s: %v (files sent with a run to a server must be regular files inside the pipeline's directory)", file, pipelineDirRef, ref, err)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	var total int64
	for _, n := range names {
		if total, err = addBundleFile(tw, root, n, total); err != nil {
			return nil, usageError("%s: %s/%s: %v", file, pipelineDirRef, n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > api.MaxBundleBytes {
		return nil, usageError("%s: the files it reads from %s pack to %d bytes, more than the %d a run may send to a server: put them into its steps' images, or run it on the server's machine", file, pipelineDirRef, buf.Len(), api.MaxBundleBytes)
	}
	return buf.Bytes(), nil
}

// collectBundle adds ref (a file, or every file under a directory) to files.
func collectBundle(root *os.Root, ref string, files map[string]bool) error {
	fi, err := root.Lstat(ref)
	if err != nil {
		return fmt.Errorf("not found beside the pipeline")
	}
	if fi.Mode().IsRegular() {
		files[ref] = true
		return nil
	}
	if !fi.IsDir() {
		return fmt.Errorf("not a regular file")
	}
	return fs.WalkDir(root.FS(), ref, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if d.Name() != "." && strings.HasPrefix(d.Name(), ".") && p != ref {
				return fs.SkipDir // .git, .venv and the like
			}
		case d.Type().IsRegular():
			files[p] = true
			if len(files) > api.MaxBundleFiles {
				return fmt.Errorf("more than %d files", api.MaxBundleFiles)
			}
		default:
			return fmt.Errorf("%s: not a regular file", p)
		}
		return nil
	})
}

// addBundleFile writes one file into tw and returns the bytes written so far.
func addBundleFile(tw *tar.Writer, root *os.Root, name string, total int64) (int64, error) {
	f, err := root.Open(name)
	if err != nil {
		return total, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return total, err
	}
	if !fi.Mode().IsRegular() {
		return total, fmt.Errorf("not a regular file")
	}
	total += fi.Size()
	if total > api.MaxBundleUnpackedBytes {
		return total, fmt.Errorf("the pipeline's files are more than %d bytes: put them into its steps' images, or run it on the server's machine", api.MaxBundleUnpackedBytes)
	}
	mode := int64(0o644)
	if fi.Mode()&0o111 != 0 {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: mode, Format: tar.FormatPAX}); err != nil {
		return total, err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return total, err
	}
	return total, nil
}
