package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/skiffml/skiff/store"
)

// Pipeline is a v2beta1 pipeline.
type Pipeline struct {
	PipelineID  string  `json:"pipeline_id,omitempty"`
	DisplayName string  `json:"display_name,omitempty"`
	Name        string  `json:"name,omitempty"`
	Description string  `json:"description,omitempty"`
	CreatedAt   string  `json:"created_at,omitempty"`
	Namespace   string  `json:"namespace,omitempty"`
	Error       *Status `json:"error,omitempty"`
}

// PipelineVersion is a v2beta1 pipeline version. Digest (a Skiff extra)
// is the SHA-256 of its spec.
type PipelineVersion struct {
	PipelineID        string          `json:"pipeline_id,omitempty"`
	PipelineVersionID string          `json:"pipeline_version_id,omitempty"`
	DisplayName       string          `json:"display_name,omitempty"`
	Name              string          `json:"name,omitempty"`
	Description       string          `json:"description,omitempty"`
	CreatedAt         string          `json:"created_at,omitempty"`
	PipelineSpec      json.RawMessage `json:"pipeline_spec,omitempty"`
	PackageURL        json.RawMessage `json:"package_url,omitempty"`
	CodeSourceURL     string          `json:"code_source_url,omitempty"`
	Error             *Status         `json:"error,omitempty"`
	Digest            string          `json:"digest,omitempty"`
}

// ListPipelinesResponse is the body of GET /pipelines.
type ListPipelinesResponse struct {
	Pipelines     []Pipeline `json:"pipelines,omitempty"`
	TotalSize     int32      `json:"total_size,omitempty"`
	NextPageToken string     `json:"next_page_token,omitempty"`
}

// ListPipelineVersionsResponse is the body of GET /pipelines/{id}/versions.
type ListPipelineVersionsResponse struct {
	PipelineVersions []PipelineVersion `json:"pipeline_versions,omitempty"`
	TotalSize        int32             `json:"total_size,omitempty"`
	NextPageToken    string            `json:"next_page_token,omitempty"`
}

// maxUploadBytes bounds a pipeline upload.
const maxUploadBytes = 4 << 20

func init() {
	extraRoutes = append(extraRoutes, func(s *Server) {
		const v2 = "/apis/v2beta1"
		s.handle("POST "+v2+"/pipelines", RoleEditor, s.createPipeline)
		s.handle("POST "+v2+"/pipelines/create", RoleEditor, s.createPipelineAndVersion)
		s.handle("POST "+v2+"/pipelines/upload", RoleEditor, s.uploadPipeline)
		s.handle("POST "+v2+"/pipelines/upload_version", RoleEditor, s.uploadPipelineVersion)
		s.handle("GET "+v2+"/pipelines", RoleViewer, s.listPipelines)
		s.handle("GET "+v2+"/pipelines/{id}", RoleViewer, s.getPipeline)
		s.handle("DELETE "+v2+"/pipelines/{id}", RoleEditor, s.deletePipeline)
		s.handle("POST "+v2+"/pipelines/{id}/versions", RoleEditor, s.createPipelineVersion)
		// {id}/versions and names/{name} overlap as patterns: one route serves both.
		s.handle("GET "+v2+"/pipelines/{id}/{sub}", RoleViewer, s.pipelineSub)
		s.handle("GET "+v2+"/pipelines/{id}/versions/{vid}", RoleViewer, s.getPipelineVersion)
		s.handle("DELETE "+v2+"/pipelines/{id}/versions/{vid}", RoleEditor, s.deletePipelineVersion)
	})
}

func pipelineOut(p store.Pipeline) Pipeline {
	return Pipeline{PipelineID: p.ID, DisplayName: p.Name, Name: p.Name, Description: p.Description, CreatedAt: rfc3339(p.CreatedAt), Namespace: p.Namespace}
}

func versionOut(v store.PipelineVersion) PipelineVersion {
	return PipelineVersion{PipelineID: v.PipelineID, PipelineVersionID: v.ID, DisplayName: v.Name, Name: v.Name,
		Description: v.Description, CreatedAt: rfc3339(v.CreatedAt), PipelineSpec: v.Spec, Digest: v.Digest}
}

func pipelineFields(p store.Pipeline) fieldFunc {
	return func(key string) (filterValue, bool) {
		switch key {
		case "pipeline_id", "id":
			return strField(p.ID), true
		case "display_name", "name":
			return strField(p.Name), true
		case "description":
			return strField(p.Description), true
		case "namespace":
			return strField(p.Namespace), true
		case "created_at":
			return timeField(p.CreatedAt), true
		}
		return filterValue{}, false
	}
}

func versionFields(v store.PipelineVersion) fieldFunc {
	return func(key string) (filterValue, bool) {
		switch key {
		case "pipeline_version_id", "id":
			return strField(v.ID), true
		case "display_name", "name":
			return strField(v.Name), true
		case "created_at":
			return timeField(v.CreatedAt), true
		}
		return filterValue{}, false
	}
}

// newVersion validates spec (as a run would compile it) and builds a
// version record.
func (s *Server) newVersion(pipelineID, name, description string, spec json.RawMessage) (*store.PipelineVersion, error) {
	if _, err := parseRunSpec(spec); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, badRequest("display_name: required")
	}
	h := sha256.Sum256(spec)
	return &store.PipelineVersion{ID: newID(), PipelineID: pipelineID, Name: name, Description: description,
		Spec: spec, Digest: "sha256:" + hex.EncodeToString(h[:]), CreatedAt: s.now().UTC()}, nil
}

func (s *Server) storePipeline(r *http.Request, p *principal, in Pipeline, v func(pid string) (*store.PipelineVersion, error)) (store.Pipeline, *store.PipelineVersion, error) {
	name := strings.TrimSpace(in.DisplayName)
	if name == "" {
		name = strings.TrimSpace(in.Name)
	}
	if name == "" {
		return store.Pipeline{}, nil, badRequest("display_name: required")
	}
	ns, err := p.namespaceFor(in.Namespace)
	if err != nil {
		return store.Pipeline{}, nil, err
	}
	pl := store.Pipeline{ID: newID(), Namespace: ns, Name: name, Description: in.Description, CreatedAt: s.now().UTC()}
	var ver *store.PipelineVersion
	if v != nil {
		if ver, err = v(pl.ID); err != nil {
			return pl, nil, err
		}
	}
	res, err := s.cfg.Store.Apply(r.Context(), store.CreatePipeline{Pipeline: pl, Version: ver})
	if err != nil {
		return pl, nil, err
	}
	if len(res.Rejected) > 0 {
		return pl, nil, apiErr(codeAlreadyExists, "%s", res.Rejected[0].Reason)
	}
	return pl, ver, nil
}

func (s *Server) createPipeline(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in Pipeline
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	pl, _, err := s.storePipeline(r, p, in, nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pipelineOut(pl))
	return nil
}

func (s *Server) createPipelineAndVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Pipeline        Pipeline        `json:"pipeline"`
		PipelineVersion PipelineVersion `json:"pipeline_version"`
	}
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	pl, ver, err := s.storePipeline(r, p, in.Pipeline, func(pid string) (*store.PipelineVersion, error) {
		name := in.PipelineVersion.DisplayName
		if name == "" {
			name = in.Pipeline.DisplayName
		}
		return s.newVersion(pid, name, in.PipelineVersion.Description, in.PipelineVersion.PipelineSpec)
	})
	if err != nil {
		return err
	}
	_ = ver
	writeJSON(w, http.StatusOK, pipelineOut(pl))
	return nil
}

func uploadTooLarge() *Error {
	return tooLarge("uploadfile: larger than the upload limit of %d bytes", maxUploadBytes)
}

// readUpload reads the multipart file "uploadfile" as a pipeline spec.
func readUpload(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes+64<<10)
	f, _, err := r.FormFile("uploadfile")
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, uploadTooLarge()
		}
		return nil, badRequest("uploadfile: expected a multipart/form-data file field named uploadfile: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUploadBytes+1))
	if err != nil {
		return nil, badRequest("uploadfile: %v", err)
	}
	if len(data) > maxUploadBytes {
		return nil, uploadTooLarge()
	}
	b, _ := json.Marshal(string(data))
	return b, nil
}

func (s *Server) uploadPipeline(w http.ResponseWriter, r *http.Request, p *principal) error {
	spec, err := readUpload(w, r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name := q.Get("display_name")
	if name == "" {
		name = q.Get("name")
	}
	in := Pipeline{DisplayName: name, Description: q.Get("description"), Namespace: q.Get("namespace")}
	pl, _, err := s.storePipeline(r, p, in, func(pid string) (*store.PipelineVersion, error) {
		return s.newVersion(pid, name, q.Get("description"), spec)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pipelineOut(pl))
	return nil
}

func (s *Server) uploadPipelineVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	spec, err := readUpload(w, r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	pid := q.Get("pipelineid")
	if pid == "" {
		pid = q.Get("pipeline_id")
	}
	name := q.Get("display_name")
	if name == "" {
		name = q.Get("name")
	}
	return s.addVersion(w, r, p, pid, name, q.Get("description"), spec)
}

func (s *Server) addVersion(w http.ResponseWriter, r *http.Request, p *principal, pid, name, desc string, spec json.RawMessage) error {
	pl, err := s.visiblePipeline(pid, p)
	if err != nil {
		return err
	}
	ver, err := s.newVersion(pl.ID, name, desc, spec)
	if err != nil {
		return err
	}
	res, err := s.cfg.Store.Apply(r.Context(), store.CreatePipelineVersion{Version: *ver})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return apiErr(codeAlreadyExists, "%s", res.Rejected[0].Reason)
	}
	writeJSON(w, http.StatusOK, versionOut(*ver))
	return nil
}

func (s *Server) createPipelineVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in PipelineVersion
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	if in.PipelineID != "" && in.PipelineID != r.PathValue("id") {
		return badRequest("pipeline_id: %q does not match the path's %q", in.PipelineID, r.PathValue("id"))
	}
	return s.addVersion(w, r, p, r.PathValue("id"), in.DisplayName, in.Description, in.PipelineSpec)
}

func (s *Server) visiblePipeline(id string, p *principal) (store.Pipeline, error) {
	pl, err := s.cfg.Store.GetPipeline(id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !p.sees(pl.Namespace) {
		return store.Pipeline{}, notFound("pipeline", id)
	}
	return pl, err
}

func (s *Server) visibleVersion(pid, vid string, p *principal) (store.PipelineVersion, error) {
	pl, err := s.visiblePipeline(pid, p)
	if err != nil {
		return store.PipelineVersion{}, err
	}
	v, err := s.cfg.Store.GetPipelineVersion(vid)
	if errors.Is(err, store.ErrNotFound) || err == nil && v.PipelineID != pl.ID {
		return v, notFound("pipeline version", vid)
	}
	return v, err
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request, p *principal) error {
	pl, err := s.visiblePipeline(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pipelineOut(pl))
	return nil
}

func (s *Server) pipelineSub(w http.ResponseWriter, r *http.Request, p *principal) error {
	switch {
	case r.PathValue("id") == "names":
		return s.getPipelineByName(w, r, p, r.PathValue("sub"))
	case r.PathValue("sub") == "versions":
		return s.listPipelineVersions(w, r, p)
	}
	return apiErr(codeNotFound, "no route for %s %s", r.Method, r.URL.Path)
}

func (s *Server) getPipelineByName(w http.ResponseWriter, r *http.Request, p *principal, name string) error {
	ns, err := p.namespaceFor(r.URL.Query().Get("namespace"))
	if err != nil {
		return err
	}
	pl, err := s.cfg.Store.PipelineByName(ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("pipeline", name)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pipelineOut(pl))
	return nil
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	ns, err := p.listNamespace(q.Get("namespace"))
	if err != nil {
		return err
	}
	lq, err := parseListQuery(q, "pipelines\x00"+ns, pipelineFields(store.Pipeline{}), "created_at")
	if err != nil {
		return err
	}
	all, err := s.cfg.Store.ListPipelines(ns)
	if err != nil {
		return err
	}
	items, total, next := page(lq, all, pipelineFields)
	out := ListPipelinesResponse{TotalSize: int32(total), NextPageToken: next}
	for _, pl := range items {
		out.Pipelines = append(out.Pipelines, pipelineOut(pl))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listPipelineVersions(w http.ResponseWriter, r *http.Request, p *principal) error {
	pl, err := s.visiblePipeline(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	lq, err := parseListQuery(r.URL.Query(), "versions\x00"+pl.ID, versionFields(store.PipelineVersion{}), "created_at")
	if err != nil {
		return err
	}
	all, err := s.cfg.Store.ListPipelineVersions(pl.ID)
	if err != nil {
		return err
	}
	items, total, next := page(lq, all, versionFields)
	out := ListPipelineVersionsResponse{TotalSize: int32(total), NextPageToken: next}
	for _, v := range items {
		out.PipelineVersions = append(out.PipelineVersions, versionOut(v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getPipelineVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	v, err := s.visibleVersion(r.PathValue("id"), r.PathValue("vid"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, versionOut(v))
	return nil
}

func (s *Server) deletePipeline(w http.ResponseWriter, r *http.Request, p *principal) error {
	pl, err := s.visiblePipeline(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := s.apply(r.Context(), store.DeletePipeline{PipelineID: pl.ID}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) deletePipelineVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	v, err := s.visibleVersion(r.PathValue("id"), r.PathValue("vid"), p)
	if err != nil {
		return err
	}
	if err := s.apply(r.Context(), store.DeletePipeline{PipelineID: v.PipelineID, VersionID: v.ID}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// versionSpec returns the stored spec of a pipeline version the caller may
// see, with its pipeline and version ids.
func (s *Server) versionSpec(ref *PipelineVersionReference, p *principal) (json.RawMessage, string, string, error) {
	if ref.PipelineVersionID == "" {
		return nil, "", "", badRequest("pipeline_version_reference.pipeline_version_id: required")
	}
	v, err := s.cfg.Store.GetPipelineVersion(ref.PipelineVersionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", "", notFound("pipeline version", ref.PipelineVersionID)
	}
	if err != nil {
		return nil, "", "", err
	}
	if ref.PipelineID != "" && ref.PipelineID != v.PipelineID {
		return nil, "", "", notFound("pipeline version", ref.PipelineVersionID)
	}
	if _, err := s.visiblePipeline(v.PipelineID, p); err != nil {
		return nil, "", "", notFound("pipeline version", ref.PipelineVersionID)
	}
	return v.Spec, v.PipelineID, v.ID, nil
}
