package bench

import (
	"os"
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

// exitedCPU is the user and system CPU time of a process that has been
// waited for, as wait4 reports it: the process's own and that of the
// processes it waited for in turn (a peer's steps). 0 when ps is nil (it
// did not start).
func exitedCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}
