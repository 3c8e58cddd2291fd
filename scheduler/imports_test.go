package scheduler

import (
	"os/exec"
	"strings"
	"testing"
)

const specPkg = "github.com/skiffml/skiff/engine/spec"

// noIO are standard packages the scheduler must not import itself: it does
// no I/O, starts no goroutines, draws no random numbers and logs nothing.
var noIO = map[string]bool{
	"os": true, "os/exec": true, "os/signal": true, "io/ioutil": true, "io/fs": true,
	"net": true, "net/http": true, "syscall": true, "unsafe": true, "runtime": true,
	"sync": true, "sync/atomic": true, "log": true, "log/slog": true,
	"math/rand": true, "math/rand/v2": true, "crypto/rand": true,
}

// TestImports keeps the scheduler pure (make check runs it): the package
// imports only the standard library (minus noIO) and engine/spec, and everything it
// depends on is the standard library, engine/spec or what engine/spec
// itself depends on (its small parsing libraries).
func TestImports(t *testing.T) {
	t.Parallel()
	goList := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", args, err, out)
		}
		return strings.Fields(string(out))
	}
	nonStd := "{{if not .Standard}}{{.ImportPath}}{{end}}"
	allowed := map[string]bool{"github.com/skiffml/skiff/scheduler": true}
	for _, p := range goList("-deps", "-f", nonStd, specPkg) {
		allowed[p] = true
	}
	std := map[string]bool{}
	for _, p := range goList("-deps", "-f", "{{if .Standard}}{{.ImportPath}}{{end}}", ".") {
		std[p] = true
	}
	for _, p := range goList("-f", `{{join .Imports " "}}`, ".") {
		if noIO[p] {
			t.Errorf("scheduler imports %s: no I/O, goroutine control, randomness or logging here", p)
		}
		if !std[p] && p != specPkg {
			t.Errorf("scheduler imports %s: only the standard library and engine/spec are allowed", p)
		}
	}
	for _, p := range goList("-deps", "-f", nonStd, ".") {
		if !allowed[p] {
			t.Errorf("scheduler depends on %s: only the standard library and engine/spec are allowed", p)
		}
	}
}
