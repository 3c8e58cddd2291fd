package bench

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time used so far by this process
// and by its children that have been waited for (a proc- workload's
// steps): a run's CPU is the difference across it. Every goroutine of the
// process counts, the garbage collector's and, for a cluster in this
// process, every node's.
func processCPU() time.Duration {
	var self, kids syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		return 0
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids); err != nil {
		kids = syscall.Rusage{}
	}
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}
