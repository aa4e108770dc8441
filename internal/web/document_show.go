package web

import (
	"html/template"
	"mime"
	"net/http"
	"strconv"

	"carefront/internal/views"
)

// showDocument shows one document: text and sanitized HTML in the page, a
// download link for anything else, and plain words when it cannot be
// shown.
func (s *Server) showDocument(w http.ResponseWriter, r *http.Request) error {
	u, req := s.patient(w, r)
	if u == nil || s.shares(w, r, req, "DocumentReference") {
		return nil
	}
	d, err := s.opts.Views.Document(r.Context(), *req, r.PathValue("id"), s.lang(w, r), s.opts.Sanitizer)
	if err != nil {
		return err
	}
	return s.render(w, r, "document", s.recordPage(w, r, "doc.title", documentPage{d, template.HTML(d.HTML)}))
}

// documentPage carries the document's HTML, which views.DocumentPolicy
// has sanitized, as trusted markup for the template.
type documentPage struct {
	*views.DocumentContent
	SafeHTML template.HTML
}

// downloadTypes are the file types served as themselves; anything else
// is served as a generic file to save, never rendered by the browser.
var downloadTypes = map[string]bool{"application/pdf": true, "text/plain": true, "image/png": true, "image/jpeg": true}

// downloadDocument sends a document's file as an attachment.
func (s *Server) downloadDocument(w http.ResponseWriter, r *http.Request) error {
	u, req := s.patient(w, r)
	if u == nil || s.shares(w, r, req, "DocumentReference") {
		return nil
	}
	a, err := s.opts.Views.DocumentFile(r.Context(), *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	ct := a.ContentType
	if !downloadTypes[ct] {
		ct = "application/octet-stream"
	}
	name := "document"
	if ext, _ := mime.ExtensionsByType(ct); len(ext) > 0 {
		name += ext[0]
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.Itoa(len(a.Data)))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, err = w.Write(a.Data)
	return err
}
