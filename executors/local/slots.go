package local

import (
	"sync"

	"github.com/skiffml/skiff/engine/spec"
)

// slots hands out the node's CPU, memory and GPUs. Requests are served in
// arrival order; a request that does not fit keeps its place and reserves
// what it asked for, so a later request is granted only from what is left
// beyond the earlier waiters' needs (no starvation of large requests).
type slots struct {
	mu       sync.Mutex
	freeCPU  int64
	freeMem  int64
	freeGPUs []string // in handing-out order
	queue    []*waiter
}

type waiter struct {
	req   spec.Resources
	ready chan struct{} // closed when granted
	gpus  []string      // set when granted
}

func newSlots(cpu, mem int64, gpus []string) *slots {
	return &slots{freeCPU: cpu, freeMem: mem, freeGPUs: append([]string(nil), gpus...)}
}

// enqueue adds a request to the queue and grants what fits.
func (s *slots) enqueue(req spec.Resources) *waiter {
	w := &waiter{req: req, ready: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, w)
	s.grantLocked()
	s.mu.Unlock()
	return w
}

// cancel drops a waiter still queued. It reports false when w was already
// granted (the caller then owns the resources and must release them).
func (s *slots) cancel(w *waiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.queue {
		if q == w {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			s.grantLocked()
			return true
		}
	}
	return false
}

// release returns a granted waiter's resources.
func (s *slots) release(w *waiter) {
	s.mu.Lock()
	s.freeCPU += w.req.MilliCPU
	s.freeMem += w.req.MemoryBytes
	s.freeGPUs = append(s.freeGPUs, w.gpus...)
	s.grantLocked()
	s.mu.Unlock()
}

func (s *slots) grantLocked() {
	cpu, mem, gpu := s.freeCPU, s.freeMem, int64(len(s.freeGPUs))
	kept := s.queue[:0]
	for _, w := range s.queue {
		r := w.req
		if fits(r.MilliCPU, cpu) && fits(r.MemoryBytes, mem) && fits(int64(r.GPU), gpu) {
			s.freeCPU -= r.MilliCPU
			s.freeMem -= r.MemoryBytes
			w.gpus = append([]string(nil), s.freeGPUs[:r.GPU]...)
			s.freeGPUs = s.freeGPUs[r.GPU:]
			close(w.ready)
		} else {
			kept = append(kept, w)
		}
		// Granted or not, w's request is out of what later waiters may take.
		cpu -= r.MilliCPU
		mem -= r.MemoryBytes
		gpu -= int64(r.GPU)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
}

// fits reports whether a request of n fits in avail; no request always fits.
func fits(n, avail int64) bool { return n == 0 || n <= avail }
