// Package ui is Skiff's web UI: server-rendered pages (html/template) with
// small JavaScript modules, embedded with go:embed and served by
// `skiff server` at / and by `skiff ui` on a workstation.
//
// It owns the pages, their assets, the DAG layout (layout.go: a pure
// function, unit-tested) and a same-origin proxy to the API for the
// browser's actions and live streams. It reads the store and blob store
// for pages, but authenticates every request through the API (whoami) and
// changes state only through the API: it never applies a store command
// itself. It must not import the engine's internals or an executor.
package ui
