package ui

import "errors"

// Sentinel errors of the ui package.
var (
	// ErrCycle: a graph given to LayoutDAG is not acyclic.
	ErrCycle = errors.New("graph has a cycle")
	// ErrBadFilter: the runs filter box holds something it cannot read.
	ErrBadFilter = errors.New("bad filter")
	// ErrNotFound: the page's object does not exist or is not visible.
	ErrNotFound = errors.New("not found")
)
