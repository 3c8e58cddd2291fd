package local

import (
	"os/exec"
	"strconv"
	"testing"

	"github.com/skiffml/skiff/executors"
)

// BenchmarkExecutor_True runs /bin/true one execution after another, as a
// chain does; BenchmarkExec_True is the bare os/exec baseline.
func BenchmarkExecutor_True(b *testing.B) {
	f := newFixture(b, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := &executors.Spec{ID: "e" + strconv.Itoa(i), RunID: "run1", Task: "t", Attempt: 1, Command: []string{"/bin/true"}}
		if ev := f.run(b, s); ev.State.String() != "SUCCEEDED" {
			b.Fatalf("%+v", ev)
		}
	}
}

func BenchmarkExec_True(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
