package local

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/skiffml/skiff/executors"
)

// FreeRootsDir is the directory of WorkDir holding empty roots kept for
// reuse (execution ids never start with a dot, so no root is named so).
const FreeRootsDir = ".free"

// maxFreeRoots bounds the roots kept for reuse (each two empty directories,
// 8 KiB on ext4): a fan-out of 1,000 /bin/true steps on two cores had
// about 550 roots at once, and with 256 kept every run made and removed
// some 300 again (proc-fanout-1000: 0.53-0.56 s against 0.43-0.48 s with
// 1,024).
const maxFreeRoots = 1024

// rootPool keeps the roots of finished executions that left nothing
// behind (a root holding only an empty tmp/, the layout of a step without
// declared inputs or outputs) and hands them to new executions by
// renaming. Making a directory allocates a block for its entries and
// removing it frees the block (a discard, on disks mounted so): a root and
// its tmp/ made and removed cost four such metadata writes per execution,
// where two renames reuse one. On this project's CI kind that was most of
// a /bin/true step's time outside the process itself.
//
// Every root is checked, without following links, both when it is given
// back and when it is taken: whatever is not exactly an empty layout is
// removed instead, so no execution sees what another left.
type rootPool struct {
	dir  string      // WorkDir/FreeRootsDir
	mode fs.FileMode // a new directory's permissions (0755 less the umask)

	mu   sync.Mutex
	free []string // names in dir, each a checked root
	next int      // the next name to give a root put in dir
}

// newRootPool prepares workDir's pool. Roots a previous process left
// there are kept: each is checked when taken, like any other.
func newRootPool(workDir string) (*rootPool, error) {
	dir := filepath.Join(workDir, FreeRootsDir)
	fi, err := os.Lstat(dir)
	adopt := err == nil && fi.IsDir() // not a link, nor anything else
	if !adopt {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
	}
	mode, err := newDirMode(dir, !adopt)
	if err != nil {
		return nil, err
	}
	p := &rootPool{dir: dir, mode: mode}
	if adopt {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			n, ok := poolIndex(name)
			if !ok || len(p.free) >= maxFreeRoots {
				if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
					return nil, err
				}
				continue
			}
			p.free = append(p.free, name)
			p.next = max(p.next, n+1)
		}
	}
	return p, nil
}

// poolIndex is N for a pool's name rN (as give names them), ok false for
// any other name.
func poolIndex(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "r")
	n, err := strconv.Atoi(digits)
	return n, ok && err == nil && n >= 0 && strconv.Itoa(n) == digits
}

// newDirMode is the permissions a directory made with 0755 gets (less the
// umask): dir's own when it was just made, else a probe's.
func newDirMode(dir string, fresh bool) (fs.FileMode, error) {
	if !fresh {
		probe := filepath.Join(dir, ".probe")
		_ = os.Remove(probe)
		if err := os.Mkdir(probe, 0o755); err != nil {
			return 0, err
		}
		defer os.Remove(probe)
		dir = probe
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}

// take moves a free root to root (which must not exist) and reports
// whether it did; false leaves root absent, to be made afresh. An error
// means root exists and is not a checked layout (something made it, or a
// root that failed its check could not be removed): the execution must
// not run in it.
func (p *rootPool) take(root string) (bool, error) {
	for {
		p.mu.Lock()
		n := len(p.free)
		if n == 0 {
			p.mu.Unlock()
			return false, nil
		}
		from := filepath.Join(p.dir, p.free[n-1])
		p.free = p.free[:n-1]
		p.mu.Unlock()
		// syscall.Rename: os.Rename stats the target first, a lookup more
		// on every step; root is absent (prepare checked), and a root made
		// meanwhile as an empty directory is replaced, then checked below.
		if err := syscall.Rename(from, root); err != nil {
			// Gone from the pool, or root appeared: drop it.
			_ = os.RemoveAll(from)
			if _, serr := os.Lstat(root); serr == nil {
				return false, fmt.Errorf("root appeared while it was being made: %w", err)
			}
			continue
		}
		if p.emptyRoot(root) {
			return true, nil
		}
		// Changed while it waited: a process the step left behind. It
		// goes; the execution gets another root.
		if err := os.RemoveAll(root); err != nil {
			return false, err
		}
	}
}

// give keeps root for reuse when it holds only an empty tmp/ and the pool
// has room; false means root is left where it is, for the caller to
// remove.
func (p *rootPool) give(root string) bool {
	if !p.emptyRoot(root) {
		return false
	}
	p.mu.Lock()
	if len(p.free) >= maxFreeRoots {
		p.mu.Unlock()
		return false
	}
	name := "r" + strconv.Itoa(p.next)
	p.next++
	p.mu.Unlock()
	if err := syscall.Rename(root, filepath.Join(p.dir, name)); err != nil { // a fresh name
		return false
	}
	p.mu.Lock()
	p.free = append(p.free, name)
	p.mu.Unlock()
	return true
}

// len is the count of free roots.
func (p *rootPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// emptyRoot reports whether root is a directory (not a link) with a new
// directory's mode whose only entry is tmp/, an empty directory (not a
// link) with that mode: a root as PrepareRootFor makes it for a step
// without inputs or outputs. It reads, never writes, and follows no link:
// tmp/ is opened from the root's own descriptor.
func (p *rootPool) emptyRoot(root string) bool {
	const flags = syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	fd, err := syscall.Open(root, flags, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	var buf [dirBufSize]byte
	if !plainDirHolding(fd, buf[:], p.mode, executors.TmpDir) {
		return false
	}
	tfd, err := syscall.Openat(fd, executors.TmpDir, flags, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(tfd)
	return plainDirHolding(tfd, buf[:], p.mode, "")
}

// dirBufSize is the buffer a check reads directory entries into: the
// entries of an empty root (., .. and tmp) take under 100 bytes.
const dirBufSize = 512

// plainDirHolding reports whether the directory open as fd has mode perm
// (no setuid, setgid or sticky bit) and its entries are exactly only (""
// for none). It works on the descriptor with plain system calls: an
// os.File would cost a descriptor-flags call, an allocation and a cleanup
// per directory, twice a step. It stops reading at the second entry, so a
// directory filled by a step costs no more to refuse.
func plainDirHolding(fd int, buf []byte, perm fs.FileMode, only string) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return false
	}
	const special = syscall.S_ISUID | syscall.S_ISGID | syscall.S_ISVTX
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Mode&special != 0 || fs.FileMode(st.Mode&0o777) != perm {
		return false
	}
	var names []string
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err != nil {
			return false
		}
		if n == 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names) // . and .. left out
		if len(names) > 1 {
			return false
		}
	}
	if only == "" {
		return len(names) == 0
	}
	return len(names) == 1 && names[0] == only
}
