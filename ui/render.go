package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"
)

// pageData is what every template gets.
type pageData struct {
	Viewer *viewer
	Nav    string // the header tab to highlight
	Data   any
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"since":    func(t time.Time) string { return since(s.now(), t) },
		"iso":      func(t time.Time) string { return isoTime(t) },
		"dur":      formatDuration,
		"short":    shortID,
		"bytes":    formatBytes,
		"lower":    strings.ToLower,
		"stateCls": stateClass,
		"json":     compactJSON,
		"f":        func(v float64) string { return fmt.Sprintf("%.4g", v) },
		"add":      func(a, b int) int { return a + b },
		"trunc":    truncate,
		"min":      func(a, b int) int { return min(a, b) },
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "base" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/base.html", n)
		if err != nil {
			return fmt.Errorf("template %s: %w", n, err)
		}
		s.pages[base] = t
	}
	return nil
}

// render writes page name with data, or a plain 500 if it fails.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *viewer, data any) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	nav, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if err := t.ExecuteTemplate(&buf, "base", pageData{Viewer: v, Nav: nav, Data: data}); err != nil {
		s.log.Error("ui: render", "page", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// since is a relative time ("3 min ago"); the page's script keeps it
// fresh.
func since(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return t.Format("2006-01-02")
}

// formatDuration is a compact duration: 850ms, 12.3s, 4m05s, 2h07m.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func shortID(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func formatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	exp := int(math.Log(float64(n)) / math.Log(1024))
	exp = min(exp, 4)
	return fmt.Sprintf("%.1f %ciB", float64(n)/math.Pow(1024, float64(exp)), "KMGT"[exp-1])
}

// stateClass is the CSS class of a run or task state.
func stateClass(state string) string {
	return "st-" + strings.ToLower(state)
}

func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

// truncate shortens s to n characters with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// maxValueChars bounds a JSON value shown inline (a parameter, an input);
// the API has the whole value.
const maxValueChars = 240

// shortJSON is a compact JSON value cut to maxValueChars, saying how
// long a cut list was.
func shortJSON(raw json.RawMessage) string {
	s := compactJSON(raw)
	if len(s) <= maxValueChars {
		return s
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		return truncate(s, maxValueChars) + fmt.Sprintf(" (%d items)", len(list))
	}
	return truncate(s, maxValueChars)
}
