// Package spec owns the plan: the one validated, format-independent model of
// a pipeline that the engine and the scheduler understand. Skiff YAML (and,
// later, KFP IR) compile to a *Plan here; validation errors name the field
// path of the source document.
//
// It also owns the small value types shared by the scheduler, the store and
// the executors: task and run states (named as KFP names them) and output
// values (JSON parameters and artifact digests).
//
// spec must not import anything but the standard library and small
// parsing libraries: no store, no raft, no executors, no net/http.
package spec
