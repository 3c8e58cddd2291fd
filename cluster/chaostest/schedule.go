package chaostest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is a fault the nemesis injects.
type Kind string

// The faults, each healed at the end of its hold.
const (
	KillLeader        Kind = "kill-leader"        // docker kill the leader; restart it
	KillFollower      Kind = "kill-follower"      // docker kill a follower; restart it
	PartitionMinority Kind = "partition-minority" // cut a minority of followers off the cluster network
	PartitionLeader   Kind = "partition-leader"   // cut the leader off the cluster network
	PauseNode         Kind = "pause"              // docker pause a node past its worker lease
	RestartNode       Kind = "restart"            // stop a node gracefully and start it again
	FillDisk          Kind = "fill-disk"          // fill the last node's blob tmpfs; free it
)

// Kinds lists every fault, in a fixed order.
var Kinds = []Kind{KillLeader, KillFollower, PartitionMinority, PartitionLeader, PauseNode, RestartNode, FillDisk}

// Fault is one entry of a schedule: at At (from the workload's start)
// inject Kind, hold it for Hold, then heal. Pick chooses among the
// candidate nodes (followers, a minority, the node to pause) when the
// fault is injected, so a replay makes the same choices.
type Fault struct {
	At   time.Duration
	Kind Kind
	Hold time.Duration
	Pick uint32
}

func (f Fault) String() string {
	return fmt.Sprintf("%6s %-18s hold %-5s pick %d", f.At.Round(100*time.Millisecond), f.Kind, f.Hold.Round(100*time.Millisecond), f.Pick)
}

// ScheduleConfig shapes a schedule.
type ScheduleConfig struct {
	Duration time.Duration // the workload's time; no fault starts after Duration minus the longest hold
	Lease    time.Duration // the worker lease (--node-ttl): a pause holds past it
	Settle   time.Duration // the time a cluster needs after a heal before the next fault (besides the wait for health)
}

// Schedule draws the nemesis's faults from seed: the kinds in a shuffled
// order, over and over, so every kind comes once before any comes twice;
// holds of 3 to 8 s (a pause: the lease plus 2 to 5 s). It is a pure
// function of its arguments.
func Schedule(seed int64, c ScheduleConfig) []Fault {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	var out []Fault
	at := 5 * time.Second
	var order []Kind
	for {
		if len(order) == 0 {
			order = append([]Kind(nil), Kinds...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		f := Fault{At: at, Kind: order[0], Pick: rng.Uint32()}
		f.Hold = 3*time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
		if f.Kind == PauseNode {
			f.Hold = c.Lease + 2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
		}
		if at+f.Hold > c.Duration {
			return out
		}
		order = order[1:]
		out = append(out, f)
		at += f.Hold + c.Settle + time.Duration(rng.Int64N(int64(3*time.Second)))
	}
}

// FormatSchedule is a schedule as printed by the suite, one fault a line.
func FormatSchedule(fs []Fault) string {
	var b strings.Builder
	for i, f := range fs {
		fmt.Fprintf(&b, "  %2d %s\n", i, f)
	}
	return b.String()
}
