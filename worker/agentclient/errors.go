package agentclient

import "errors"

// ErrInvalidConfig: a Config field is missing or out of range; the error
// names it.
var ErrInvalidConfig = errors.New("invalid agent client config")
