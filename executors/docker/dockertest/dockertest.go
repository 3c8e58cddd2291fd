// Package dockertest gives tests a Docker client and a small local image
// (Debian's busybox-static in an imported root filesystem), without any
// registry.
//
// In CI (CI=true) a missing Docker engine or busybox is a test failure;
// elsewhere the tests that need them skip with a message saying why.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Image is the reference of the test image: /bin/busybox and a link for
// each of its applets (sh, cat, sleep, tr, wc, printf, head, ...).
const Image = "skiff-test/busybox:1"

// BusyboxPath is the static busybox put in the image.
var BusyboxPath = "/bin/busybox"

var (
	once     sync.Once
	cli      *client.Client
	setupErr error
)

// unavailable skips the test, or fails it in CI.
func unavailable(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("docker tests: %s (CI=true: Docker and busybox-static are required)", msg)
	}
	t.Skipf("docker tests skipped: %s (set CI=true to make this a failure)", msg)
}

// Client returns a client of the local Docker engine with the test image
// present, building it when missing; it skips (or fails in CI) when the
// engine does not answer or busybox is missing.
func Client(t testing.TB) *client.Client {
	t.Helper()
	once.Do(func() { cli, setupErr = setup() })
	if setupErr != nil {
		unavailable(t, "%v", setupErr)
	}
	return cli
}

func setup() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("no Docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = c.Ping(pctx)
	pcancel()
	if err != nil {
		return nil, fmt.Errorf("Docker engine not reachable: %w", err)
	}
	if err := EnsureImage(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// EnsureImage imports Image from a root filesystem holding BusyboxPath when
// the engine lacks it.
func EnsureImage(ctx context.Context, c *client.Client) error {
	if _, err := c.ImageInspect(ctx, Image); err == nil {
		return nil
	} else if !client.IsErrNotFound(err) {
		return fmt.Errorf("inspect %s: %w", Image, err)
	}
	rootfs, err := busyboxRootfs()
	if err != nil {
		return err
	}
	rc, err := c.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, Image,
		image.ImportOptions{Message: "skiff test image: busybox-static", Changes: []string{
			`ENV PATH=/bin`, `CMD ["/bin/sh"]`,
		}})
	if err != nil {
		return fmt.Errorf("import %s: %w", Image, err)
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("import %s: %s", Image, out)
	}
	return nil
}

// busyboxRootfs is a tar of /bin/busybox, its applet links, /tmp and an
// /etc/passwd with root and nobody.
func busyboxRootfs() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("%s missing (apt-get install busybox-static): %w", BusyboxPath, err)
	}
	list, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	dir := func(name string, mode int64) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: now})
	}
	file := func(name string, mode int64, data []byte) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: now})
		_, _ = tw.Write(data)
	}
	dir("bin/", 0o755)
	dir("etc/", 0o755)
	dir("tmp/", 0o1777)
	dir("root/", 0o700)
	file("bin/busybox", 0o755, bin)
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.ContainsRune(applet, '/') {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
