package ui

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/skiffml/skiff/engine/spec"
)

// artifactData is an artifact page: one output, shown by its type.
type artifactData struct {
	RunID, RunName, Task, Name string
	TaskIndex                  int
	Ref                        spec.ArtifactRef
	Download, Raw              string
	View                       string // metrics, classification, markdown, html, table, text, binary
	Metrics                    []kv
	Confusion                  *confusionView
	ROC                        *rocView
	Markdown                   template.HTML
	Table                      [][]string
	Text                       string
	Truncated                  bool
	Note                       string
	Slices                     []sliceView
	Entries                    []dirEntry // a directory's files
	Base                       string     // the artifact page's URL
	File                       string     // the file of a directory shown
	FileSize                   int64
}

// artifactOf finds output name of the task in the URL and checks that the
// viewer sees its run.
func (s *Server) artifactOf(r *http.Request, v *viewer) (*runModel, int, spec.ArtifactRef, error) {
	m, err := s.loadRun(r.PathValue("id"), v)
	if err != nil {
		return nil, 0, spec.ArtifactRef{}, err
	}
	t, err := m.taskOf(r.PathValue("task"))
	if err != nil {
		return nil, 0, spec.ArtifactRef{}, err
	}
	out, ok := t.Outputs[r.PathValue("name")]
	if !ok || out.Artifact == nil {
		return nil, 0, spec.ArtifactRef{}, fmt.Errorf("%w: artifact output %q of task %s", ErrNotFound, r.PathValue("name"), t.Name)
	}
	if s.cfg.Blobs == nil {
		return nil, 0, spec.ArtifactRef{}, fmt.Errorf("%w: this server keeps no artifacts", ErrNotFound)
	}
	return m, t.Index, *out.Artifact, nil
}

func (s *Server) artifactPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	m, ti, ref, err := s.artifactOf(r, v)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("/runs/%s/tasks/%d/outputs/%s", m.run.ID, ti, r.PathValue("name"))
	d := artifactData{RunID: m.run.ID, RunName: m.run.Name, Task: m.tasks[ti].Name, TaskIndex: ti, Name: r.PathValue("name"), Ref: ref,
		Download: base + "/raw?download=1", Raw: base + "/raw", Base: base}
	file := r.URL.Query().Get("file")
	switch {
	case ref.Dir && file == "":
		d.View = "dir"
		d.Entries, d.Truncated, err = listDir(r.Context(), s.cfg.Blobs, ref.Digest, base)
		return s.renderArtifact(w, r, v, &d, err)
	case ref.Dir:
		rc, size, err := openDirFile(r.Context(), s.cfg.Blobs, ref.Digest, file)
		if err != nil {
			return err
		}
		defer rc.Close()
		d.File, d.FileSize = file, size
		q := "?file=" + urlQuery(file)
		d.Download, d.Raw = base+"/raw"+q+"&download=1", base+"/raw"+q
		data, truncated, err := readPreview(rc, s.cfg.PreviewBytes)
		if err != nil {
			return err
		}
		d.Truncated = truncated
		d.fill(fileType(file), nil, data)
		return s.renderArtifact(w, r, v, &d, nil)
	}
	data, truncated, err := s.readBlob(r, ref.Digest)
	if err != nil {
		return err
	}
	d.Truncated = truncated
	d.fill(ref.Type, decodeJSON(ref.Metadata), data)
	return s.renderArtifact(w, r, v, &d, nil)
}

func (s *Server) renderArtifact(w http.ResponseWriter, r *http.Request, v *viewer, d *artifactData, err error) error {
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "artifact", v, d)
	return nil
}

// fileType is the artifact type a file inside a directory is shown as,
// by its extension.
func fileType(name string) spec.Type {
	switch strings.ToLower(path.Ext(name)) {
	case ".md", ".markdown":
		return spec.TypeMarkdown
	case ".html", ".htm":
		return spec.TypeHTML
	}
	return spec.TypeArtifact
}

// fill chooses the view of an artifact of type typ from its metadata
// (KFP writes metrics there) and its content.
func (d *artifactData) fill(typ spec.Type, rawMeta any, data []byte) {
	meta := unwrapKFP(rawMeta)
	content := unwrapKFP(decodeJSON(data))
	// KFP's SlicedClassificationMetrics (Skiff reads its type as
	// Artifact): one classification view per slice
	sl := slicesOf(meta)
	if sl == nil && typ != spec.TypeMarkdown && typ != spec.TypeHTML {
		sl = slicesOf(content)
	}
	if sl != nil {
		d.View, d.Slices = "sliced", sl
		return
	}
	switch {
	case typ == spec.TypeClassificationMetrics:
		d.View = "classification"
		d.Confusion, d.ROC, d.Metrics = classificationOf(meta, content)
	case typ == spec.TypeMetrics:
		d.View = "metrics"
		d.Metrics = append(flatten(meta, ""), flatten(content, "")...)
	case typ == spec.TypeMarkdown:
		d.View = "markdown"
		d.Markdown = renderMarkdown(data)
	case typ == spec.TypeHTML:
		d.View = "html"
	case !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0:
		d.View, d.Note = "binary", "Binary content."
	default:
		d.View = "text"
		if tbl := csvPreview(data, 50); tbl != nil {
			d.View, d.Table = "table", tbl
		} else {
			d.Text = firstLines(string(data), 200)
		}
	}
}

// classificationOf reads a confusion matrix and an ROC curve from KFP's
// ClassificationMetrics, in the metadata or else the content, and the
// other scalars of the metadata.
func classificationOf(meta, content any) (*confusionView, *rocView, []kv) {
	cm := classificationViews(meta)
	if cm == nil {
		cm = classificationViews(content)
	}
	roc := rocOf(meta)
	if roc == nil {
		roc = rocOf(content)
	}
	return cm, roc, flatten(meta, "")
}

// sliceView is one slice of a SlicedClassificationMetrics.
type sliceView struct {
	Name      string
	Confusion *confusionView
	ROC       *rocView
	Metrics   []kv
}

// slicesOf reads KFP's SlicedClassificationMetrics metadata:
// {"evaluationSlices": [{"slice": NAME, "sliceClassificationMetrics":
// {confusionMatrix, confidenceMetrics}}]}; nil when v is not one.
func slicesOf(v any) []sliceView {
	obj, _ := v.(map[string]any)
	list, ok := obj["evaluationSlices"].([]any)
	if !ok {
		return nil
	}
	out := []sliceView{}
	for i, e := range list {
		if len(out) == 50 {
			break
		}
		m, _ := e.(map[string]any)
		name, _ := m["slice"].(string)
		if name == "" {
			name = fmt.Sprintf("slice %d", i+1)
		}
		cm, roc, scalars := classificationOf(m["sliceClassificationMetrics"], nil)
		out = append(out, sliceView{Name: name, Confusion: cm, ROC: roc, Metrics: scalars})
	}
	return out
}

// readBlob reads up to PreviewBytes of a blob.
func (s *Server) readBlob(r *http.Request, digest string) ([]byte, bool, error) {
	rc, err := s.cfg.Blobs.Open(r.Context(), digest)
	if err != nil {
		return nil, false, fmt.Errorf("%w: artifact %s: %v", ErrNotFound, digest, err)
	}
	defer rc.Close()
	return readPreview(rc, s.cfg.PreviewBytes)
}

// readPreview reads up to limit bytes of rd and whether there was more.
func readPreview(rd io.Reader, limit int64) ([]byte, bool, error) {
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > limit {
		return data[:limit], true, nil
	}
	return data, false, nil
}

// artifactRaw serves an artifact's bytes: HTML inline in a sandbox (for
// the page's iframe), everything else as a download or plain text.
func (s *Server) artifactRaw(w http.ResponseWriter, r *http.Request, v *viewer) error {
	_, _, ref, err := s.artifactOf(r, v)
	if err != nil {
		return err
	}
	var rc io.ReadCloser
	name, typ, file := r.PathValue("name"), ref.Type, r.URL.Query().Get("file")
	switch {
	case ref.Dir && file != "":
		rc, _, err = openDirFile(r.Context(), s.cfg.Blobs, ref.Digest, file)
		if err != nil {
			return err
		}
		name, typ = path.Base(file), fileType(file)
	default:
		rc, err = s.cfg.Blobs.Open(r.Context(), ref.Digest)
		if err != nil {
			return fmt.Errorf("%w: artifact %s", ErrNotFound, ref.Digest)
		}
		if ref.Dir {
			name += ".tar"
			typ = spec.TypeArtifact
		}
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Security-Policy", sandboxPolicy)
	h.Del("X-Frame-Options")
	switch {
	case r.URL.Query().Get("download") != "":
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	case typ == spec.TypeHTML:
		h.Set("Content-Type", "text/html; charset=utf-8")
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	_, err = io.Copy(w, rc)
	return err
}

func decodeJSON(b []byte) any {
	var v any
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

// unwrapKFP strips KFP's protobuf-JSON wrappers ({"struct": …},
// {"list": …}, {"structValue": …}, {"listValue": {"values": …}}) at
// every level.
func unwrapKFP(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for _, k := range []string{"struct", "structValue", "list", "numberValue", "stringValue", "boolValue"} {
				if inner, ok := x[k]; ok {
					return unwrapKFP(inner)
				}
			}
			if lv, ok := x["listValue"].(map[string]any); ok {
				return unwrapKFP(lv["values"])
			}
			if fs, ok := x["fields"].(map[string]any); ok {
				return unwrapKFP(fs)
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = unwrapKFP(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unwrapKFP(e)
		}
		return out
	}
	return v
}

// flatten lists scalar values of a JSON object with dotted keys (at most
// 500), skipping the big arrays that classification metrics carry.
func flatten(v any, prefix string) []kv {
	var out []kv
	var walk func(v any, key string)
	walk = func(v any, key string) {
		if len(out) >= 500 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				if k == "confusionMatrix" || k == "confidenceMetrics" {
					continue
				}
				walk(x[k], strings.TrimPrefix(key+"."+k, "."))
			}
		case []any:
			if len(x) <= 20 {
				for i, e := range x {
					walk(e, fmt.Sprintf("%s[%d]", key, i))
				}
			}
		case nil:
		case float64:
			out = append(out, kv{key, formatNumber(x)})
		default:
			b, _ := json.Marshal(x)
			out = append(out, kv{key, strings.Trim(string(b), `"`)})
		}
	}
	walk(v, prefix)
	return out
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.4g", f)
}

// confusionView is a confusion matrix drawn as an SVG heat map.
type confusionView struct {
	Labels    []string
	Cells     []cellView
	RowLabels []labelView
	ColLabels []labelView
	Size      float64 // of the matrix, in SVG units
	Cell      float64
	Left, Top float64 // label gutters
	W, H      float64
}

type cellView struct {
	X, Y, CX, CY, Opacity float64
	Size                  float64
	Value                 string
	Dark                  bool // the count is drawn light on a dark cell
}

type labelView struct {
	X, Y float64
	Text string
}

func classificationViews(v any) *confusionView {
	obj, _ := v.(map[string]any)
	cm, _ := obj["confusionMatrix"].(map[string]any)
	if cm == nil {
		return nil
	}
	specs, _ := cm["annotationSpecs"].([]any)
	rows, _ := cm["rows"].([]any)
	n := len(specs)
	if n == 0 || len(rows) != n || n > 50 {
		return nil
	}
	cv := &confusionView{Cell: max(24, min(64, 480/float64(n))), Left: 110, Top: 28}
	cv.Size = cv.Cell * float64(n)
	cv.W, cv.H = cv.Left+cv.Size, cv.Top+cv.Size
	grid := make([][]float64, n)
	peak := 0.0
	for i, rw := range rows {
		cells := rowCells(rw)
		if len(cells) != n {
			return nil
		}
		grid[i] = cells
		for _, c := range cells {
			peak = max(peak, c)
		}
	}
	for _, sp := range specs {
		m, _ := sp.(map[string]any)
		name, _ := m["displayName"].(string)
		cv.Labels = append(cv.Labels, name)
		k := float64(len(cv.Labels) - 1)
		cv.RowLabels = append(cv.RowLabels, labelView{X: cv.Left - 8, Y: cv.Top + (k+0.5)*cv.Cell, Text: truncate(name, 14)})
		cv.ColLabels = append(cv.ColLabels, labelView{X: cv.Left + (k+0.5)*cv.Cell, Y: cv.Top - 10, Text: truncate(name, max(3, int(cv.Cell/8)))})
	}
	for i := range n {
		for j := range n {
			op := 0.04
			if peak > 0 {
				op = 0.04 + 0.96*grid[i][j]/peak
			}
			x, y := cv.Left+float64(j)*cv.Cell, cv.Top+float64(i)*cv.Cell
			cv.Cells = append(cv.Cells, cellView{X: x, Y: y, Size: cv.Cell, CX: x + cv.Cell/2, CY: y + cv.Cell/2, Opacity: op, Value: formatNumber(grid[i][j]), Dark: op > 0.55})
		}
	}
	return cv
}

// rowCells reads a confusion-matrix row: {"row": [...]} or a list.
func rowCells(v any) []float64 {
	if m, ok := v.(map[string]any); ok {
		v = m["row"]
	}
	xs, _ := v.([]any)
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		f, ok := x.(float64)
		if !ok {
			return nil
		}
		out = append(out, f)
	}
	return out
}

// rocView is an ROC curve from confidenceMetrics, in a 0..Size box.
type rocView struct {
	Size   float64
	Points string // SVG polyline points
	AUC    string
}

func rocOf(v any) *rocView {
	obj, _ := v.(map[string]any)
	list, _ := obj["confidenceMetrics"].([]any)
	type pt struct{ x, y float64 }
	var pts []pt
	for _, e := range list {
		m, _ := e.(map[string]any)
		fpr, ok1 := m["falsePositiveRate"].(float64)
		rec, ok2 := m["recall"].(float64)
		if ok1 && ok2 {
			pts = append(pts, pt{fpr, rec})
		}
	}
	if len(pts) == 0 { // one threshold is a curve through (0,0) and (1,1)
		return nil
	}
	pts = append(pts, pt{0, 0}, pt{1, 1})
	slices.SortFunc(pts, func(a, b pt) int {
		if a.x != b.x {
			return cmpFloat(a.x, b.x)
		}
		return cmpFloat(a.y, b.y)
	})
	const size = 240.0
	var b strings.Builder
	auc := 0.0
	for i, p := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", p.x*size, (1-p.y)*size)
		if i > 0 {
			auc += (p.x - pts[i-1].x) * (p.y + pts[i-1].y) / 2
		}
	}
	return &rocView{Size: size, Points: strings.TrimSpace(b.String()), AUC: fmt.Sprintf("%.3f", auc)}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// markdownPolicy allows what Markdown produces and nothing that runs.
var markdownPolicy = bluemonday.UGCPolicy()

// renderMarkdown renders Markdown, then sanitizes the HTML: raw HTML in
// the document cannot add scripts, handlers or javascript: links.
func renderMarkdown(src []byte) template.HTML {
	var buf bytes.Buffer
	md := goldmark.New(goldmark.WithExtensions(extension.GFM))
	if err := md.Convert(src, &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(string(src)))
	}
	return template.HTML(markdownPolicy.SanitizeBytes(buf.Bytes())) //nolint:gosec // sanitized by bluemonday
}

// csvPreview reads the first rows of comma- or tab-separated text, or
// nil when it does not look like a table.
func csvPreview(data []byte, rows int) [][]string {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	sep := ','
	if bytes.Count(first, []byte("\t")) > bytes.Count(first, []byte(",")) {
		sep = '\t'
	}
	if !bytes.ContainsRune(first, sep) {
		return nil
	}
	rd := csv.NewReader(bytes.NewReader(data))
	rd.Comma, rd.FieldsPerRecord, rd.LazyQuotes = sep, -1, true
	var out [][]string
	for len(out) <= rows {
		rec, err := rd.Read()
		if err != nil {
			break
		}
		out = append(out, rec)
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
