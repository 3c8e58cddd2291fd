package blob

import "errors"

// ErrNotFound is returned (wrapped) when no blob has the requested digest.
var ErrNotFound = errors.New("blob not found")

// ErrCorrupt is returned (wrapped) when a stored blob does not decode or its
// content does not match its digest.
var ErrCorrupt = errors.New("blob corrupt")

// ErrInvalidDigest is returned (wrapped) for a digest that is not
// "sha256:" followed by 64 lower-case hex digits.
var ErrInvalidDigest = errors.New("invalid digest")

// ErrUnsupported is returned (wrapped) by PutPath and Materialize for a
// file type the store does not keep (symbolic links, devices, ...) and by
// Materialize for tar entries whose names escape the destination.
var ErrUnsupported = errors.New("unsupported entry")

// ErrTooLarge is returned (wrapped) by Materialize for a tar entry larger
// than Config.MaxEntrySize.
var ErrTooLarge = errors.New("entry too large")
