package executors

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// LogsDir is the directory of an executor's WorkDir holding its
// executions' logs (LogPath), beside their roots (WorkDir/<id>/) and never
// inside one: a step can write its root, and the host writes and reads a
// log after the step is gone. Execution ids never start with a dot, so no
// root is named LogsDir.
const LogsDir = ".logs"

// LogPath is where the combined output of execution id is kept.
func LogPath(workDir, id string) string { return filepath.Join(workDir, LogsDir, id+".log") }

// PrepareWorkDir creates workDir and its LogsDir.
func PrepareWorkDir(workDir string) error { return os.MkdirAll(filepath.Join(workDir, LogsDir), 0o755) }

// CreateLog creates (or truncates) the log file at path for appending. A
// symbolic link there is refused, not followed.
func CreateLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND|syscall.O_NOFOLLOW, 0o644)
}

// RemoveExecution removes execution id's root and log under workDir, once
// its outputs and log are stored. Symbolic links in the root are removed,
// never followed.
func RemoveExecution(workDir, id string) error {
	err := removeRoot(filepath.Join(workDir, id))
	if lerr := os.Remove(LogPath(workDir, id)); lerr != nil && !errors.Is(lerr, fs.ErrNotExist) {
		err = errors.Join(err, lerr)
	}
	return err
}

// removeRoot removes an execution's root. Most steps leave the layout's
// directories empty: then each goes with one rmdir (a few system calls in
// all, where os.RemoveAll opens and lists every directory); anything else
// (files, links, other directories) is left to os.RemoveAll, which removes
// links without following them.
func removeRoot(root string) error {
	for _, d := range []string{TmpDir, OutputsDir, InputsDir} {
		if err := syscall.Rmdir(filepath.Join(root, d)); err != nil && err != syscall.ENOENT {
			return os.RemoveAll(root)
		}
	}
	switch err := syscall.Rmdir(root); err {
	case nil, syscall.ENOENT:
		return nil
	default:
		return os.RemoveAll(root)
	}
}
