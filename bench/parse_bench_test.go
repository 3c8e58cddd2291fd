package bench

import (
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// BenchmarkParseFanout10000 is the compile of the 10,001-task fan-out
// pipeline text that skiff bench times inside each run's wall time.
func BenchmarkParseFanout10000(b *testing.B) {
	w, err := ParseWorkload("fanout-10000")
	if err != nil {
		b.Fatal(err)
	}
	text := w.YAML()
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := spec.ParseSkiff(text); err != nil {
			b.Fatal(err)
		}
	}
}
