package kfp

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

// fieldErr is an error at a field below the one being compiled.
type fieldErr struct{ field, msg string }

// paramRefRE matches a reference to a parameter input in a KFP trigger
// condition: inputs.parameter_values['NAME'].
var paramRefRE = regexp.MustCompile(`inputs\s*\.\s*parameter_values\s*\[\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\]`)

// translateCondition turns a KFP trigger condition (CEL over the
// ExecutorInput's inputs) into a Skiff `when` (CEL over the task's inputs
// by name): inputs.parameter_values['x'] becomes inputs['x'] with x mapped
// by name. Conditions on artifacts are not supported.
func translateCondition(cond string, name func(string) (string, bool)) (string, error) {
	var bad error
	out := paramRefRE.ReplaceAllStringFunc(cond, func(m string) string {
		sm := paramRefRE.FindStringSubmatch(m)
		n := sm[1] + sm[2]
		s, ok := name(n)
		if !ok && bad == nil {
			bad = fmt.Errorf("the condition reads %q, which is not an input of the task", n)
		}
		return "inputs[" + strconv.Quote(s) + "]"
	})
	if bad != nil {
		return "", bad
	}
	if strings.Contains(paramRefRE.ReplaceAllString(out, ""), "inputs.") {
		return "", fmt.Errorf("unsupported: %q reads inputs other than parameter_values (conditions on artifacts)", cond)
	}
	return out, nil
}

// staticResources reads a container's resources: requests where given,
// else limits (Skiff reserves what a step asks for). Values that hold
// placeholders are left to dispatch (dynamic).
func staticResources(r *ResourceSpec) (res spec.Resources, dynamic bool, ferr *fieldErr) {
	pick := func(fields ...any) (string, string) {
		for i := 0; i+1 < len(fields); i += 2 {
			name := fields[i].(string)
			switch v := fields[i+1].(type) {
			case string:
				if v != "" {
					return name, v
				}
			case *float64:
				if v != nil {
					return name, strconv.FormatFloat(*v, 'f', -1, 64)
				}
			}
		}
		return "", ""
	}
	if f, v := pick("resourceCpuRequest", r.ResourceCPURequest, "cpuRequest", r.CPURequest, "resourceCpuLimit", r.ResourceCPULimit, "cpuLimit", r.CPULimit); v != "" {
		if hasPlaceholder(v) {
			dynamic = true
		} else if n, err := ParseCPU(v); err != nil {
			return res, dynamic, &fieldErr{f, err.Error()}
		} else {
			res.MilliCPU = n
		}
	}
	f, v := pick("resourceMemoryRequest", r.ResourceMemoryRequest, "resourceMemoryLimit", r.ResourceMemoryLimit)
	if v == "" {
		// The older numeric fields are in GB.
		f, v = pick("memoryRequest", r.MemoryRequest, "memoryLimit", r.MemoryLimit)
		if v != "" {
			v += "G"
		}
	}
	if v != "" {
		if hasPlaceholder(v) {
			dynamic = true
		} else if n, err := ParseMemory(v); err != nil {
			return res, dynamic, &fieldErr{f, err.Error()}
		} else {
			res.MemoryBytes = n
		}
	}
	if a := r.Accelerator; a != nil {
		f, v := "accelerator.resourceCount", a.ResourceCount
		if v == "" && a.Count != nil {
			f, v = "accelerator.count", string(*a.Count)
		}
		switch {
		case v == "":
		case hasPlaceholder(v) || hasPlaceholder(a.ResourceType):
			dynamic = true
		default:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return res, dynamic, &fieldErr{f, fmt.Sprintf("expected a count of accelerators, got %q", v)}
			}
			res.GPU = n
			res.Accelerator = strings.TrimSpace(a.ResourceType)
			if res.Accelerator == "" {
				res.Accelerator = strings.TrimSpace(a.Type)
			}
		}
	}
	return res, dynamic, nil
}

// ParseCPU reads a Kubernetes CPU quantity: cores ("2", "0.5") or
// millicores ("500m").
func ParseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult, num := 1000.0, s
	if strings.HasSuffix(s, "m") {
		mult, num = 1, strings.TrimSuffix(s, "m")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > 1e15 {
		return 0, fmt.Errorf("invalid cpu %q: want cores (2, 0.5) or millicores (500m)", s)
	}
	return int64(math.Ceil(f * mult)), nil
}

var memUnits = []struct {
	suffix string
	mult   float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15},
}

// ParseMemory reads a Kubernetes memory quantity: bytes, or a number with a
// suffix K, M, G, T, P (powers of 1000) or Ki, Mi, Gi, Ti, Pi (of 1024).
func ParseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult, num := 1.0, s
	for _, u := range memUnits {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > 1e18 {
		return 0, fmt.Errorf("invalid memory %q: want bytes or a size like 512Mi, 1Gi, 1G", s)
	}
	return int64(math.Ceil(f * mult)), nil
}

// retry maps a KFP retry policy. Durations are proto Duration text.
func retry(rp *RetryPolicy) (*spec.Retry, *fieldErr) {
	r := &spec.Retry{Limit: rp.MaxRetryCount}
	if r.Limit < 0 {
		return nil, &fieldErr{"maxRetryCount", "must not be negative"}
	}
	dur := func(field, s string) (spec.Duration, *fieldErr) {
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, &fieldErr{field, fmt.Sprintf("expected a duration like \"30s\", got %q", s)}
		}
		return spec.Duration(d), nil
	}
	var ferr *fieldErr
	if r.Backoff, ferr = dur("backoffDuration", rp.BackoffDuration); ferr != nil {
		return nil, ferr
	}
	if r.MaxBackoff, ferr = dur("backoffMaxDuration", rp.BackoffMaxDuration); ferr != nil {
		return nil, ferr
	}
	if r.MaxBackoff > 0 && r.Backoff > r.MaxBackoff {
		r.Backoff = r.MaxBackoff
	}
	if f := rp.BackoffFactor; f != nil {
		if *f < 1 || math.IsInf(*f, 0) || math.IsNaN(*f) {
			return nil, &fieldErr{"backoffFactor", fmt.Sprintf("must be at least 1, got %g", *f)}
		}
		r.Factor = *f
	}
	return r, nil
}
