package spec

import "encoding/json"

// ArtifactRef points at an artifact's bytes in the blob store.
type ArtifactRef struct {
	Digest string `json:"digest"` // "sha256:<hex>"
	Size   int64  `json:"size"`   // uncompressed bytes
	Type   Type   `json:"type,omitempty"`
	Dir    bool   `json:"dir,omitempty"` // a directory, stored as a tar stream
	// Metadata is the artifact's KFP-style metadata, a JSON object (a
	// step's ExecutorOutput, an importer's metadata); consumers read it.
	// It is not part of the digest, which names the bytes alone.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// Value is a resolved input or a produced output: a JSON parameter value,
// an artifact reference, or a list of artifacts (a loop's fan-in of an
// artifact output, ordered by iteration) — exactly one of them. An empty
// artifact list is a non-nil empty Artifacts.
type Value struct {
	Param     json.RawMessage `json:"param,omitempty"`
	Artifact  *ArtifactRef    `json:"artifact,omitempty"`
	Artifacts []ArtifactRef   `json:"artifacts,omitempty"`
	// List marks an artifact list even when Artifacts is empty (JSON drops
	// an empty slice).
	List bool `json:"list,omitempty"`
}

// IsArtifact reports whether v holds an artifact (not a list).
func (v Value) IsArtifact() bool { return v.Artifact != nil }

// IsArtifactList reports whether v holds a list of artifacts.
func (v Value) IsArtifactList() bool { return v.List || v.Artifacts != nil }

// IsZero reports whether v holds nothing.
func (v Value) IsZero() bool { return v.Param == nil && v.Artifact == nil && !v.IsArtifactList() }
