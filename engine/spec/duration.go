package spec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as Go duration text ("1m30s") in JSON
// and YAML. A bare number is read as seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads duration text or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: want e.g. 30s, 5m, 1h30m", s)
		}
		if v < 0 {
			return fmt.Errorf("invalid duration %q: must not be negative", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: want a string like 30s or a number of seconds", b)
	}
	if secs < 0 {
		return fmt.Errorf("invalid duration %s: must not be negative", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
