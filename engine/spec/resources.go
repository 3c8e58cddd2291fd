package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseCPU reads a CPU request: cores as a number (2, 0.5) or text ("2",
// "0.5"), or millicores ("500m"). Fractions of a millicore round up.
func parseCPU(v any) (int64, error) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, fmt.Errorf("expected cores (2, 0.5) or millicores (\"500m\"), got %s", describe(v))
	}
	mult := 1000.0
	num := s
	if strings.HasSuffix(s, "m") {
		mult, num = 1, strings.TrimSuffix(s, "m")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid cpu %s: want cores (2, 0.5) or millicores (500m)", quote(s))
	}
	return toInt64(f * mult)
}

var memSuffixes = []struct {
	suffix string
	mult   float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// parseMemory reads a memory request: bytes as a number, or a number with
// a suffix Ki, Mi, Gi, Ti (powers of 1024) or K (also k), M, G, T (powers
// of 1000). Fractions of a byte round up.
func parseMemory(v any) (int64, error) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, fmt.Errorf("expected bytes or a size like 512Mi, 1Gi, 1G, got %s", describe(v))
	}
	mult, num := 1.0, s
	for _, m := range memSuffixes {
		if strings.HasSuffix(s, m.suffix) {
			mult, num = m.mult, strings.TrimSpace(strings.TrimSuffix(s, m.suffix))
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid memory %s: want bytes or a size like 512Mi, 1Gi, 1G", quote(s))
	}
	return toInt64(f * mult)
}

func toInt64(f float64) (int64, error) {
	f = math.Ceil(f)
	if f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, fmt.Errorf("value out of range")
	}
	return int64(f), nil
}

// ParseCPU reads a CPU amount as a step's resources take it (cores, or
// millicores with "m") and returns millicores.
func ParseCPU(s string) (int64, error) { return parseCPU(s) }

// ParseMemory reads a memory size as a step's resources take it (bytes,
// or a number with Ki, Mi, Gi, Ti, K, M, G or T) and returns bytes.
func ParseMemory(s string) (int64, error) { return parseMemory(s) }
