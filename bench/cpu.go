package bench

import (
	"syscall"
	"time"
)

// cpuTimes is the user and system CPU time used so far by this process
// (every goroutine of it: the garbage collector's and, for a cluster in
// this process, every node's) and by its children that have been waited
// for (a proc- workload's steps). A run's CPU is the difference across it.
type cpuTimes struct{ self, children time.Duration }

func processCPU() cpuTimes {
	var self, kids syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		return cpuTimes{}
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids); err != nil {
		kids = syscall.Rusage{}
	}
	return cpuTimes{self: tv(self.Utime) + tv(self.Stime), children: tv(kids.Utime) + tv(kids.Stime)}
}

// since is the CPU used from t0 to t.
func (t cpuTimes) since(t0 cpuTimes) cpuTimes {
	return cpuTimes{self: t.self - t0.self, children: t.children - t0.children}
}

func (t cpuTimes) total() time.Duration { return t.self + t.children }

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}
