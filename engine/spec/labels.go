package spec

import (
	"fmt"
	"regexp"
)

// A label name is an optional DNS-subdomain prefix and a slash, then a
// name of up to 63 characters (Kubernetes' rules, so that the same
// labels read the same on a worker and on a pod); a value is up to 63
// characters of the same alphabet, or empty.
var (
	labelName   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValue  = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
	maxLabelLen = 253 + 1 + 63
)

// CheckLabel reports why name=value is not a valid node label or
// selector pair.
func CheckLabel(name, value string) error {
	if len(name) > maxLabelLen || !labelName.MatchString(name) {
		return fmt.Errorf("label name %q: want [prefix/]name, letters, digits, '-', '_' and '.', up to 63 characters, starting and ending with a letter or digit", name)
	}
	if !labelValue.MatchString(value) {
		return fmt.Errorf("label %s value %q: want up to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, or empty", name, value)
	}
	return nil
}
