package kfp

import "errors"

// ErrNoWorkspace is the error of a step that uses {{$.workspace_path}}
// where its executor gives no workspace (any executor but local).
var ErrNoWorkspace = errors.New(workspacePath + ": workspaces need the local executor")
