package local

import (
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func granted(w *waiter) bool { return isClosed(w.ready) }

func TestSlots_FIFOWithoutStarvation(t *testing.T) {
	t.Parallel()
	s := newSlots(2000, 0, []string{"0", "1"})
	a := s.enqueue(spec.Resources{MilliCPU: 1000, GPU: 1})
	big := s.enqueue(spec.Resources{MilliCPU: 2000})
	small := s.enqueue(spec.Resources{MilliCPU: 1000})
	gpuOnly := s.enqueue(spec.Resources{GPU: 1})
	if !granted(a) || granted(big) || granted(small) {
		t.Fatal("a should run; big waits; small must not jump ahead of big")
	}
	if !granted(gpuOnly) || gpuOnly.gpus[0] != "1" || a.gpus[0] != "0" {
		t.Fatalf("gpu-only step should use the free GPU: a=%v g=%v", a.gpus, gpuOnly.gpus)
	}
	s.release(a)
	if !granted(big) || granted(small) {
		t.Fatal("big should get the CPUs once a releases")
	}
	s.release(big)
	if !granted(small) {
		t.Fatal("small should run after big")
	}
	w := s.enqueue(spec.Resources{MilliCPU: 2000})
	if !s.cancel(w) || granted(w) {
		t.Fatal("cancel of a waiter")
	}
	s.release(small)
	s.release(gpuOnly)
	if s.freeCPU != 2000 || len(s.freeGPUs) != 2 || len(s.queue) != 0 {
		t.Fatalf("not all returned: %+v", s)
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
