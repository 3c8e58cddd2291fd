package api

import "encoding/json"

// versionSpec returns the stored spec of a pipeline version the caller may
// see, with its pipeline and version ids.
func (s *Server) versionSpec(ref *PipelineVersionReference, p *principal) (json.RawMessage, string, string, error) {
	return nil, "", "", apiErr(codeUnimplemented, "pipeline_version_reference: pipelines are not supported yet; send pipeline_spec")
}
