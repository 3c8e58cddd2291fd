package spec

import (
	"bytes"
	"encoding/json"
	"strconv"
)

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

// TextValue is a JSON parameter value as a string value: a string as is;
// a number in plain decimal (no exponent), true/false, and a list or object
// as its compact JSON text, each as a JSON string. It is how KFP's driver
// turns a value into the text of a STRING input. Invalid JSON is returned
// as is.
func TextValue(raw json.RawMessage) json.RawMessage {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || v[0] == '"' {
		return raw
	}
	b, err := json.Marshal(ValueText(v))
	if err != nil {
		return raw
	}
	return b
}

// ValueText is the text of a JSON parameter value (see TextValue): a
// string's content, anything else as TextValue writes it.
func ValueText(raw json.RawMessage) string {
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return string(raw)
	}
	switch x := x.(type) {
	case string:
		return x
	case float64:
		if bytes.ContainsAny(raw, ".eE") {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return string(bytes.TrimSpace(raw))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}
