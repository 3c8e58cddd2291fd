package scheduler

import (
	"math"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

// Retry defaults, as KFP's retry policy has them.
const (
	DefaultBackoffFactor = 2.0
	DefaultMaxBackoff    = time.Hour
)

// RetryDelay decides whether a task whose attempt number attempt (1-based)
// just failed gets another attempt, and how long to wait before it: the
// policy's Backoff × Factor^(attempt-1), capped at MaxBackoff. A nil policy
// or an exhausted Limit means no retry.
func RetryDelay(p *spec.Retry, attempt int) (time.Duration, bool) {
	if p == nil || attempt < 1 || attempt > p.Limit {
		return 0, false
	}
	factor := p.Factor
	if factor == 0 {
		factor = DefaultBackoffFactor
	}
	max := p.MaxBackoff.D()
	if max == 0 {
		max = DefaultMaxBackoff
	}
	d := float64(p.Backoff.D()) * math.Pow(factor, float64(attempt-1))
	if d >= float64(max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return max, true
	}
	return time.Duration(d), true
}
