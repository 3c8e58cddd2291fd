package scheduler

import (
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

func TestRetryDelay_Backoff(t *testing.T) {
	p := &spec.Retry{Limit: 4, Backoff: spec.Duration(time.Second), Factor: 3, MaxBackoff: spec.Duration(5 * time.Second)}
	cases := []struct {
		name    string
		p       *spec.Retry
		attempt int
		want    time.Duration
		retry   bool
	}{
		{"no policy", nil, 1, 0, false},
		{"first failure", p, 1, time.Second, true},
		{"second failure grows by the factor", p, 2, 3 * time.Second, true},
		{"capped at max", p, 3, 5 * time.Second, true},
		{"last retry", p, 4, 5 * time.Second, true},
		{"limit exhausted", p, 5, 0, false},
		{"default factor 2", &spec.Retry{Limit: 3, Backoff: spec.Duration(time.Second)}, 3, 4 * time.Second, true},
		{"zero backoff retries at once", &spec.Retry{Limit: 1}, 1, 0, true},
		{"huge exponent is capped", &spec.Retry{Limit: 5000, Backoff: spec.Duration(time.Second), Factor: 10}, 4000, DefaultMaxBackoff, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RetryDelay(tc.p, tc.attempt)
			if got != tc.want || ok != tc.retry {
				t.Errorf("RetryDelay(attempt %d) = %v, %v; want %v, %v", tc.attempt, got, ok, tc.want, tc.retry)
			}
		})
	}
}
