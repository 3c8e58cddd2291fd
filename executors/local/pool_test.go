package local

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// newTestPool is a pool in a new work dir.
func newTestPool(t *testing.T) (*rootPool, string) {
	t.Helper()
	work := t.TempDir()
	p, err := newRootPool(work)
	if err != nil {
		t.Fatal(err)
	}
	return p, work
}

// poolHoldingOne is a pool holding one root given back, and the path of
// a root to take.
func poolHoldingOne(t *testing.T) (*rootPool, string) {
	t.Helper()
	p, work := newTestPool(t)
	a := filepath.Join(work, "a")
	newLayout(t, a)
	if !p.give(a) {
		t.Fatal("not kept")
	}
	return p, filepath.Join(work, "b")
}

// newLayout makes root as PrepareRootFor does for a step without inputs
// or outputs.
func newLayout(t *testing.T, root string) {
	t.Helper()
	if err := executors.PrepareRootFor(root, &executors.Spec{}); err != nil {
		t.Fatal(err)
	}
}

// TestRootPool_ReusesAnEmptyRoot: a root holding only an empty tmp/ is
// renamed into the pool and out again as the next execution's root (the
// same directory, not a new one), and the pool is then empty.
func TestRootPool_ReusesAnEmptyRoot(t *testing.T) {
	t.Parallel()
	p, work := newTestPool(t)
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	if ok, err := p.take(a); ok || err != nil {
		t.Fatalf("an empty pool gave a root (%v)", err)
	}
	newLayout(t, a)
	ino := inode(t, a)
	if !p.give(a) || exists(a) || p.len() != 1 {
		t.Fatalf("give: root still there %v, pool %d; want it moved into the pool", exists(a), p.len())
	}
	if ok, err := p.take(b); !ok || err != nil || p.len() != 0 {
		t.Fatalf("take: %v, pool %d", err, p.len())
	}
	if inode(t, b) != ino || !exists(filepath.Join(b, executors.TmpDir)) {
		t.Fatal("the root taken is not the one given, or lost its tmp/")
	}
}

// TestRootPool_RefusesWhatIsNotAnEmptyLayout: a root a step left anything
// in, changed, or replaced by a link is not kept (the caller removes it
// as before); the pool stays empty.
func TestRootPool_RefusesWhatIsNotAnEmptyLayout(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, root string){
		"file in tmp":  func(t *testing.T, root string) { write(t, filepath.Join(root, "tmp", "f")) },
		"file in root": func(t *testing.T, root string) { write(t, filepath.Join(root, "f")) },
		"outputs dir":  func(t *testing.T, root string) { mkdir(t, filepath.Join(root, executors.OutputsDir)) },
		"no tmp":       func(t *testing.T, root string) { rmdir(t, filepath.Join(root, "tmp")) },
		"tmp a file": func(t *testing.T, root string) {
			rmdir(t, filepath.Join(root, "tmp"))
			write(t, filepath.Join(root, "tmp"))
		},
		"root mode 0700": func(t *testing.T, root string) { chmod(t, root, 0o700) },
		"tmp mode 0777":  func(t *testing.T, root string) { chmod(t, filepath.Join(root, "tmp"), 0o777) },
		"tmp sticky":     func(t *testing.T, root string) { chmod(t, filepath.Join(root, "tmp"), 0o755|os.ModeSticky) },
		"tmp a link":     func(t *testing.T, root string) { linkTo(t, filepath.Join(root, "tmp"), t.TempDir()) },
		"root a link": func(t *testing.T, root string) {
			other := t.TempDir() + "/r"
			newLayout(t, other)
			linkRoot(t, root, other)
		},
		"tmp holds a link": func(t *testing.T, root string) { must(t, os.Symlink("/", filepath.Join(root, "tmp", "l"))) },
		"root setgid":      func(t *testing.T, root string) { chmod(t, root, 0o755|os.ModeSetgid) },
		"many in root": func(t *testing.T, root string) {
			for i := range 300 { // more entries than one read of the check takes
				write(t, filepath.Join(root, "f"+strconv.Itoa(i)+strings.Repeat("x", 40)))
			}
		},
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, work := newTestPool(t)
			root := filepath.Join(work, "x")
			newLayout(t, root)
			spoil(t, root)
			if p.give(root) || p.len() != 0 || !exists(root) {
				t.Fatalf("kept: pool %d, root there %v; want it refused and left in place", p.len(), exists(root))
			}
		})
	}
}

// TestRootPool_TakeChecksAgain: a pooled root something wrote into after
// it was given back (a process the step left behind) is removed at take,
// and the execution gets none from the pool.
func TestRootPool_TakeChecksAgain(t *testing.T) {
	t.Parallel()
	p, b := poolHoldingOne(t)
	write(t, filepath.Join(p.dir, p.free[0], "tmp", "late"))
	if ok, err := p.take(b); ok || err != nil || exists(b) || p.len() != 0 {
		t.Fatalf("take gave a root written to after its give (root there %v, pool %d)", exists(b), p.len())
	}
	if names, _ := os.ReadDir(p.dir); len(names) != 0 {
		t.Fatalf("pool dir still holds %v", names)
	}
}

// TestRootPool_NewAdoptsWhatWasLeft: the roots a previous process left in
// the pool are kept (a new process need not remove them at its start) and
// checked when taken: a clean one is reused, one written to meanwhile is
// removed; what is not a pool's name goes at once, and new names do not
// collide with the adopted ones.
func TestRootPool_NewAdoptsWhatWasLeft(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	free := filepath.Join(work, FreeRootsDir)
	clean, dirty, odd := filepath.Join(free, "r3"), filepath.Join(free, "r7"), filepath.Join(free, "x1")
	for _, r := range []string{clean, dirty, odd} {
		newLayout(t, r)
	}
	write(t, filepath.Join(dirty, "tmp", "secret"))
	ino := inode(t, clean)
	p, err := newRootPool(work)
	if err != nil {
		t.Fatal(err)
	}
	if exists(odd) || p.len() != 2 {
		t.Fatalf("pool %d, %s there %v; want r3 and r7 adopted, x1 removed", p.len(), odd, exists(odd))
	}
	got := map[uint64]bool{}
	for i := range 2 {
		root := filepath.Join(work, "e"+strconv.Itoa(i))
		if ok, err := p.take(root); err != nil {
			t.Fatal(err)
		} else if ok {
			got[inode(t, root)] = true
		}
	}
	if len(got) != 1 || !got[ino] || exists(dirty) || p.len() != 0 {
		t.Fatalf("taken %v (want only r3's inode %d); r7 there %v", got, ino, exists(dirty))
	}
	a := filepath.Join(work, "a")
	newLayout(t, a)
	if !p.give(a) || !exists(filepath.Join(free, "r8")) {
		t.Fatal("a root given back is not r8, past the adopted names")
	}
}

// TestRootPool_NewReplacesAPoolThatIsNotADirectory: a link (or a file) where
// the pool belongs is removed, not followed, and a directory made.
func TestRootPool_NewReplacesAPoolThatIsNotADirectory(t *testing.T) {
	t.Parallel()
	work, elsewhere := t.TempDir(), t.TempDir()
	newLayout(t, filepath.Join(elsewhere, "r0"))
	must(t, os.Symlink(elsewhere, filepath.Join(work, FreeRootsDir)))
	p, err := newRootPool(work)
	if err != nil {
		t.Fatal(err)
	}
	if p.len() != 0 || !exists(filepath.Join(elsewhere, "r0")) {
		t.Fatalf("pool %d; the link's target touched: %v", p.len(), !exists(filepath.Join(elsewhere, "r0")))
	}
	if fi, err := os.Lstat(filepath.Join(work, FreeRootsDir)); err != nil || !fi.IsDir() {
		t.Fatalf("pool dir %v, %v", fi, err)
	}
}

// TestLocal_ReusedRootIsClean: executions one after another reuse a root
// (the same directory: its inode) and none sees what the one before left:
// a step that wrote tmp/ gets its root removed, not reused.
func TestLocal_ReusedRootIsClean(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	steps := []*executors.Spec{
		shSpec("a-1", "true"),
		shSpec("b-1", `test "$(ls -A "$SKIFF_ROOT")" = tmp && test -z "$(ls -A "$TMPDIR")" && echo dirty > "$TMPDIR/x"`),
		shSpec("c-1", `test "$(ls -A "$SKIFF_ROOT")" = tmp && test -z "$(ls -A "$TMPDIR")" && stat -c %i .`),
		shSpec("d-1", `test "$(ls -A "$SKIFF_ROOT")" = tmp && test -z "$(ls -A "$TMPDIR")" && stat -c %i .`),
	}
	logs := map[string]string{}
	for _, s := range steps {
		ev := f.run(t, s)
		logs[s.ID] = string(f.blobBytes(t, ev.Logs))
		if ev.State != spec.TaskSucceeded {
			t.Fatalf("%s: %s %s (log: %q)", s.ID, ev.State, ev.Reason, logs[s.ID])
		}
		f.ex.Wait()
	}
	if logs["c-1"] != logs["d-1"] {
		t.Fatalf("d-1 ran in root %q, c-1 in %q: want c-1's root reused", logs["d-1"], logs["c-1"])
	}
	if n := f.ex.roots.len(); n != 1 {
		t.Fatalf("pool holds %d roots after the runs; want 1 (the last step's)", n)
	}
	for _, s := range steps {
		if exists(f.ex.Root(s.ID)) || exists(executors.LogPath(f.ex.cfg.WorkDir, s.ID)) {
			t.Fatalf("%s: root or log left behind", s.ID)
		}
	}
	entries, err := os.ReadDir(f.ex.cfg.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != FreeRootsDir+" "+executors.LogsDir {
		t.Fatalf("work dir holds %q", got)
	}
}

func write(t *testing.T, path string) { t.Helper(); must(t, os.WriteFile(path, []byte("x"), 0o644)) }
func mkdir(t *testing.T, path string) { t.Helper(); must(t, os.Mkdir(path, 0o755)) }
func rmdir(t *testing.T, path string) { t.Helper(); must(t, os.Remove(path)) }
func chmod(t *testing.T, path string, m os.FileMode) {
	t.Helper()
	must(t, os.Chmod(path, m))
}
func linkTo(t *testing.T, link, target string) {
	t.Helper()
	must(t, os.Remove(link))
	must(t, os.Symlink(target, link))
}
func linkRoot(t *testing.T, root, target string) {
	t.Helper()
	must(t, os.RemoveAll(root))
	must(t, os.Symlink(target, root))
}
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRootPool_TakeRefusesARootThatAppeared: when root exists by the time
// a free one is renamed there (something made it), take fails rather than
// let the execution run in what it did not check.
func TestRootPool_TakeRefusesARootThatAppeared(t *testing.T) {
	t.Parallel()
	p, b := poolHoldingOne(t)
	newLayout(t, b)
	write(t, filepath.Join(b, "planted"))
	if ok, err := p.take(b); ok || err == nil {
		t.Fatalf("take = %v, %v; want an error", ok, err)
	}
}

// BenchmarkRootPool_Check is the check a root passes when given back and
// again when taken.
func BenchmarkRootPool_Check(b *testing.B) {
	work := b.TempDir()
	p, err := newRootPool(work)
	if err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(work, "r")
	if err := executors.PrepareRootFor(root, &executors.Spec{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !p.emptyRoot(root) {
			b.Fatal("refused")
		}
	}
}
