package spec

import "encoding/json"

// ArtifactRef points at an artifact's bytes in the blob store.
type ArtifactRef struct {
	Digest string `json:"digest"` // "sha256:<hex>"
	Size   int64  `json:"size"`   // uncompressed bytes
	Type   Type   `json:"type,omitempty"`
	Dir    bool   `json:"dir,omitempty"` // a directory, stored as a tar stream
}

// Value is a resolved input or a produced output: a JSON parameter value or
// an artifact reference, never both.
type Value struct {
	Param    json.RawMessage `json:"param,omitempty"`
	Artifact *ArtifactRef    `json:"artifact,omitempty"`
}

// IsArtifact reports whether v holds an artifact.
func (v Value) IsArtifact() bool { return v.Artifact != nil }
