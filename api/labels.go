package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Run labels are Skiff's extra on KFP's run (KFP v2 runs have none): short
// key=value pairs given at creation, kept in the run's RunMeta, and
// selected on with a label selector, as kubectl and argo users expect
// (`skiff runs list -l team=vision,stage!=dev`).

// Label limits: Kubernetes' sizes, so labels read the same everywhere.
const (
	maxLabels        = 64
	maxLabelKeyLen   = 63
	maxLabelValueLen = 63
)

// checkLabels validates labels given at run creation; errors name the
// field (labels.KEY).
func checkLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return badRequest("labels: %d labels, at most %d", len(labels), maxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := checkLabelKey(k); err != nil {
			return badRequest("labels: %v", err)
		}
		if err := checkLabelValue(labels[k]); err != nil {
			return badRequest("labels.%s: %v", k, err)
		}
	}
	return nil
}

func checkLabelKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("empty key")
	case len(k) > maxLabelKeyLen:
		return fmt.Errorf("key %.20q...: longer than %d characters", k, maxLabelKeyLen)
	case !labelChars(k, true):
		return fmt.Errorf("key %q: use letters, digits, '-', '_', '.' and '/', starting and ending with a letter or digit", k)
	}
	return nil
}

func checkLabelValue(v string) error {
	switch {
	case len(v) > maxLabelValueLen:
		return fmt.Errorf("value longer than %d characters", maxLabelValueLen)
	case v != "" && !labelChars(v, false):
		return fmt.Errorf("value %q: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit", v)
	}
	return nil
}

func labelChars(s string, key bool) bool {
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '-' && c != '_' && c != '.' && !(key && c == '/') {
			return false
		}
	}
	return alnum(s[0]) && alnum(s[len(s)-1])
}

// SelectorOp is how a selector requirement matches a label.
type SelectorOp int

const (
	SelEquals    SelectorOp = iota // k=v, k==v
	SelNotEquals                   // k!=v (also true when k is absent, as in kubectl)
	SelExists                      // k
	SelNotExists                   // !k
)

// SelectorReq is one requirement of a label selector.
type SelectorReq struct {
	Key   string
	Op    SelectorOp
	Value string
}

// Selector is a parsed label selector: every requirement must hold.
type Selector []SelectorReq

// ParseSelector parses kubectl's equality-based selector syntax:
// comma-separated requirements `k=v`, `k==v`, `k!=v`, `k` (has the label)
// and `!k` (has not). Errors name the bad requirement.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	if strings.TrimSpace(s) == "" {
		return sel, nil
	}
	for i, part := range strings.Split(s, ",") {
		r, err := parseRequirement(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("requirement %d (%q): %w", i+1, part, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

func parseRequirement(p string) (SelectorReq, error) {
	if p == "" {
		return SelectorReq{}, fmt.Errorf("empty")
	}
	var r SelectorReq
	switch {
	case strings.HasPrefix(p, "!") && !strings.ContainsAny(p, "="):
		r = SelectorReq{Key: strings.TrimSpace(p[1:]), Op: SelNotExists}
	case strings.Contains(p, "!="):
		k, v, _ := strings.Cut(p, "!=")
		r = SelectorReq{Key: strings.TrimSpace(k), Op: SelNotEquals, Value: strings.TrimSpace(v)}
	case strings.Contains(p, "=="):
		k, v, _ := strings.Cut(p, "==")
		r = SelectorReq{Key: strings.TrimSpace(k), Op: SelEquals, Value: strings.TrimSpace(v)}
	case strings.Contains(p, "="):
		k, v, _ := strings.Cut(p, "=")
		r = SelectorReq{Key: strings.TrimSpace(k), Op: SelEquals, Value: strings.TrimSpace(v)}
	default:
		r = SelectorReq{Key: p, Op: SelExists}
	}
	if err := checkLabelKey(r.Key); err != nil {
		return r, err
	}
	if err := checkLabelValue(r.Value); err != nil {
		return r, err
	}
	return r, nil
}

// Matches reports whether labels satisfy every requirement.
func (sel Selector) Matches(labels map[string]string) bool {
	for _, r := range sel {
		v, ok := labels[r.Key]
		switch r.Op {
		case SelEquals:
			if !ok || v != r.Value {
				return false
			}
		case SelNotEquals:
			if ok && v == r.Value {
				return false
			}
		case SelExists:
			if !ok {
				return false
			}
		case SelNotExists:
			if ok {
				return false
			}
		}
	}
	return true
}

// String is the selector in canonical form.
func (sel Selector) String() string {
	parts := make([]string, len(sel))
	for i, r := range sel {
		switch r.Op {
		case SelEquals:
			parts[i] = r.Key + "=" + r.Value
		case SelNotEquals:
			parts[i] = r.Key + "!=" + r.Value
		case SelExists:
			parts[i] = r.Key
		case SelNotExists:
			parts[i] = "!" + r.Key
		}
	}
	return strings.Join(parts, ",")
}

// ParseLabels parses `k=v` pairs (the CLI's --label) into a map, checking
// each; errors name the bad pair.
func ParseLabels(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("%q: expected key=value", p)
		}
		if err := checkLabelKey(k); err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		if err := checkLabelValue(v); err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%q: label %s given twice", p, k)
		}
		out[k] = v
	}
	if len(out) > maxLabels {
		return nil, fmt.Errorf("%d labels, at most %d", len(out), maxLabels)
	}
	return out, nil
}
