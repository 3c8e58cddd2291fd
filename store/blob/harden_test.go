package blob

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// rawTarHeader is one ustar header block, built by hand so that tests can
// write what archive/tar's Writer refuses (PAX sparse records, odd types).
func rawTarHeader(name string, typeflag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size&0o77777777777))
	copy(b[136:148], "00000000000\x00")
	b[156] = typeflag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padBlock(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }

func paxRecord(k, v string) string {
	s := " " + k + "=" + v + "\n"
	n := len(s) + 1
	for len(strconv.Itoa(n))+len(s) != n {
		n++
	}
	return strconv.Itoa(n) + s
}

// rawTar is a tar stream of one entry, preceded by a PAX header holding
// pax (key=value pairs) when not empty.
func rawTar(name string, typeflag byte, size int64, pax ...string) []byte {
	var buf bytes.Buffer
	if len(pax) > 0 {
		var recs string
		for i := 0; i+1 < len(pax); i += 2 {
			recs += paxRecord(pax[i], pax[i+1])
		}
		buf.Write(rawTarHeader("PaxHeaders/"+name, tar.TypeXHeader, int64(len(recs))))
		buf.Write(padBlock([]byte(recs)))
	}
	buf.Write(rawTarHeader(name, typeflag, size))
	if size > 0 && size < 1<<20 {
		buf.Write(padBlock(bytes.Repeat([]byte("x"), int(size))))
	}
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

func TestMaterialize_RefusesEntriesThatAreNotFilesOrDirsNamingThem(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		tar  []byte
		kind string
	}{
		{"symlink", rawTar("link-entry", tar.TypeSymlink, 0), "symbolic link"},
		{"hard link", rawTar("link-entry", tar.TypeLink, 0), "hard link"},
		{"char device", rawTar("dev-entry", tar.TypeChar, 0), "character device"},
		{"block device", rawTar("dev-entry", tar.TypeBlock, 0), "block device"},
		{"fifo", rawTar("fifo-entry", tar.TypeFifo, 0), "named pipe"},
		{"pax sparse", rawTar("sparse-entry", tar.TypeReg, 1,
			"GNU.sparse.map", "0,1", "GNU.sparse.numblocks", "1", "GNU.sparse.size", "100", "GNU.sparse.name", "sparse-entry"), "sparse file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := s.Put(ctx, bytes.NewReader(tc.tar))
			if err != nil {
				t.Fatal(err)
			}
			ref.Dir = true
			base := t.TempDir()
			dst := filepath.Join(base, "dst")
			err = s.Materialize(ctx, ref, dst)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "-entry") || !strings.Contains(err.Error(), tc.kind) {
				t.Fatalf("err = %v, want ErrUnsupported naming the entry and %q", err, tc.kind)
			}
			if ents, _ := os.ReadDir(dst); len(ents) != 0 {
				t.Errorf("refused entry left %d files", len(ents))
			}
		})
	}
}

func TestMaterialize_EntrySizeIsBounded(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig(filepath.Join(t.TempDir(), "blobs"))
	cfg.MaxEntrySize = 10
	s, err := OpenConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, size := range []int64{10, 11} {
		ref, err := s.Put(ctx, bytes.NewReader(rawTar("big", tar.TypeReg, size)))
		if err != nil {
			t.Fatal(err)
		}
		ref.Dir = true
		err = s.Materialize(ctx, ref, filepath.Join(t.TempDir(), "dst"))
		switch {
		case size <= 10 && err != nil:
			t.Fatalf("%d bytes: %v", size, err)
		case size > 10 && (!errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "limit of 10 bytes")):
			t.Fatalf("%d bytes: err = %v, want ErrTooLarge naming the entry and the limit", size, err)
		}
	}
	if _, err := OpenConfig(Config{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "MaxEntrySize") {
		t.Errorf("MaxEntrySize 0: %v", err)
	}
	if DefaultConfig("x").MaxEntrySize != DefaultMaxEntrySize {
		t.Error("DefaultConfig has no entry limit")
	}
}

func TestPut_ReplacesADamagedBlobInsteadOfDeduplicating(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ref, err := s.Put(ctx, strings.NewReader("precious bytes"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseDigest(ref.Digest)
	if err := os.WriteFile(s.disk.path(h), []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, strings.NewReader("precious bytes")); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s, ref.Digest)
	if err != nil || string(got) != "precious bytes" {
		t.Fatalf("after a second put: %q, %v", got, err)
	}
}

func TestPut_SyncsTheParentOfANewShardDir(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var mu sync.Mutex
	var synced []string
	s.disk.syncDir = func(dir string) error {
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, dir)
		return syncDir(dir)
	}
	ref, err := s.Put(context.Background(), strings.NewReader("new shard"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseDigest(ref.Digest)
	shard := filepath.Dir(s.disk.path(h))
	want := []string{filepath.Dir(shard), shard}
	if fmt.Sprint(synced) != fmt.Sprint(want) {
		t.Fatalf("synced %v, want %v", synced, want)
	}
}

func TestPut_RecreatesAMissingShardTree(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	if err := os.RemoveAll(filepath.Join(s.Dir(), "sha256")); err != nil {
		t.Fatal(err)
	}
	ref, err := s.Put(context.Background(), strings.NewReader("after a cleanup"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s, ref.Digest); err != nil || string(got) != "after a cleanup" {
		t.Fatalf("%q %v", got, err)
	}
}

// FuzzUntarHeader fuzzes one tar header's fields: whatever they hold,
// untar either refuses the entry or writes a directory or a regular file
// of at most the entry limit, inside the destination.
func FuzzUntarHeader(f *testing.F) {
	f.Add("f", byte(tar.TypeReg), int64(3), "", "")
	f.Add("d/", byte(tar.TypeDir), int64(0), "", "")
	f.Add("l", byte(tar.TypeSymlink), int64(0), "linkpath", "/etc")
	f.Add("s", byte(tar.TypeReg), int64(1), "GNU.sparse.map", "0,1")
	f.Add("big", byte(tar.TypeReg), int64(65), "size", "65")
	f.Add("h", byte(tar.TypeLink), int64(0), "", "")
	f.Fuzz(func(t *testing.T, name string, typeflag byte, size int64, paxKey, paxVal string) {
		const limit = 64
		var pax []string
		if paxKey != "" {
			pax = []string{paxKey, paxVal}
		}
		base := t.TempDir()
		dst := filepath.Join(base, "p", "dst")
		err := untar(context.Background(), bytes.NewReader(rawTar(name, typeflag, size, pax...)), dst, limit)
		assertOnlyUnder(t, base, dst)
		if err != nil {
			return
		}
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			info, ierr := d.Info()
			switch {
			case ierr != nil:
			case !info.Mode().IsRegular() && !info.IsDir():
				t.Errorf("%s: a %v was written", p, info.Mode().Type())
			case info.Mode().IsRegular() && info.Size() > limit:
				t.Errorf("%s: %d bytes written, over the limit", p, info.Size())
			}
			return nil
		})
	})
}
