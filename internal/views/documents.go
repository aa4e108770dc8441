package views

import (
	"context"
	"encoding/base64"
	"errors"
	"mime"
	"net/url"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// Documents is the documents page: visit summaries, letters and other
// documents, newest first.
type Documents struct {
	Documents []Document `json:"documents"`
	// Held are reports kept as documents that wait, as the patient chose,
	// for their care team's review.
	Held []HeldResult `json:"held,omitempty"`
}

// Document is one document as the list and its page show it.
type Document struct {
	ID     string    `json:"id"`
	Title  string    `json:"title"`
	Type   string    `json:"type,omitempty"`
	Date   time.Time `json:"date,omitzero"`
	Author string    `json:"author,omitempty"`
	// Format is how the page can show it: text, html, or download (a PDF
	// or other file), or none when there is nothing to show.
	Format string `json:"format"`
}

// DocumentContent is one document with what its page shows: the text, or
// sanitized HTML, or why it cannot be shown.
type DocumentContent struct {
	Document
	Text string `json:"text,omitempty"`
	// HTML is the document's HTML after sanitizing (no scripts, event
	// handlers, styles or remote images); the page may insert it as is.
	HTML string `json:"html,omitempty"`
	// Problem is why the content cannot be shown: missing, too-large,
	// unsupported, or held (it waits for review; Refs release it).
	Problem string   `json:"problem,omitempty"`
	Refs    []string `json:"refs,omitempty"`
}

// Attachment is a document's file for download.
type Attachment struct {
	ContentType string
	Title       string
	Data        []byte
}

// Limits on what a document page shows in the page and what it serves.
const (
	maxShownBytes    = 1 << 20
	maxDownloadBytes = 20 << 20
)

// Sanitizer cleans a document's HTML for showing in a page.
type Sanitizer interface{ Sanitize(string) string }

// Documents builds the documents list.
func (b *Builder) Documents(ctx context.Context, req clinical.Request, lang string) (*Documents, error) {
	return build(ctx, b, req, "documents", lang, func(s *session) (*Documents, error) { return s.documents(ctx) })
}

func (s *session) documents(ctx context.Context) (*Documents, error) {
	docs, held, err := s.search(ctx, "DocumentReference", url.Values{"_sort": {"-date"}}, 500)
	if err != nil {
		return nil, err
	}
	out := &Documents{Documents: []Document{}}
	for _, d := range held {
		title := str(d, "description")
		if title == "" {
			title = conceptText(d["type"])
		}
		out.Held = append(out.Held, HeldResult{Title: title, Date: firstDate(d, "date"), Refs: []string{"DocumentReference/" + idOf(d)}})
	}
	for _, d := range docs {
		if str(d, "status") == "entered-in-error" {
			continue
		}
		out.Documents = append(out.Documents, s.document(ctx, d))
	}
	return out, nil
}

func (s *session) document(ctx context.Context, d map[string]any) Document {
	doc := Document{ID: idOf(d), Type: conceptText(d["type"]), Date: firstDate(d, "date")}
	if doc.Date.IsZero() {
		doc.Date = firstDate(obj(d["context"]), "period")
	}
	a := attachmentOf(d)
	doc.Title = str(d, "description")
	if doc.Title == "" {
		doc.Title = str(a, "title")
	}
	if doc.Title == "" {
		doc.Title = doc.Type
	}
	for _, au := range list(d["author"]) {
		if n := s.name(ctx, au); n != "" {
			doc.Author = n
			break
		}
	}
	doc.Format = formatOf(a)
	return doc
}

// attachmentOf is a document's first attachment.
func attachmentOf(d map[string]any) map[string]any {
	for _, c := range list(d["content"]) {
		if a := obj(obj(c)["attachment"]); a != nil {
			return a
		}
	}
	return nil
}

func mediaType(a map[string]any) string {
	mt, _, err := mime.ParseMediaType(str(a, "contentType"))
	if err != nil {
		return ""
	}
	return mt
}

func formatOf(a map[string]any) string {
	if a == nil || (a["data"] == nil && str(a, "url") == "") {
		return "none"
	}
	switch mediaType(a) {
	case "text/plain":
		return "text"
	case "text/html", "application/xhtml+xml":
		return "html"
	}
	return "download"
}

// Document builds one document's page; another patient's document, or a
// missing one, is NotFound.
func (b *Builder) Document(ctx context.Context, req clinical.Request, id, lang string, clean Sanitizer) (*DocumentContent, error) {
	if !fhir.ValidID(id) {
		return nil, apperr.New(apperr.NotFound, "no such document")
	}
	return build(ctx, b, req, "document", lang, func(s *session) (*DocumentContent, error) { return s.documentContent(ctx, id, clean) })
}

func (s *session) documentContent(ctx context.Context, id string, clean Sanitizer) (*DocumentContent, error) {
	d, err := s.read(ctx, "DocumentReference", id)
	var held *clinical.HeldError
	if errors.As(err, &held) {
		// A report that waits for review: the page says so and offers
		// to show it now; nothing of it is read.
		return &DocumentContent{Document: Document{ID: id, Format: "none"}, Problem: "held", Refs: []string{held.Ref}}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &DocumentContent{Document: s.document(ctx, d)}
	if out.Format == "none" {
		out.Problem = "missing"
		return out, nil
	}
	if out.Format == "download" {
		return out, nil
	}
	data, err := s.attachmentData(ctx, attachmentOf(d), maxShownBytes)
	switch {
	case errors.Is(err, errTooLarge):
		out.Problem = "too-large"
		return out, nil
	case errors.Is(err, errMissing):
		out.Problem = "missing"
		return out, nil
	case err != nil:
		return nil, err
	}
	text := strings.ToValidUTF8(string(data), "\uFFFD")
	if out.Format == "text" {
		out.Text = text
	} else {
		out.HTML = clean.Sanitize(text)
	}
	return out, nil
}

// DocumentFile returns a document's file for download.
func (b *Builder) DocumentFile(ctx context.Context, req clinical.Request, id string) (*Attachment, error) {
	if !fhir.ValidID(id) {
		return nil, apperr.New(apperr.NotFound, "no such document")
	}
	return build(ctx, b, req, "document-file", "", func(s *session) (*Attachment, error) { return s.documentFile(ctx, id) })
}

func (s *session) documentFile(ctx context.Context, id string) (*Attachment, error) {
	d, err := s.read(ctx, "DocumentReference", id)
	if err != nil {
		return nil, err
	}
	a := attachmentOf(d)
	data, err := s.attachmentData(ctx, a, maxDownloadBytes)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, apperr.New(apperr.TooLarge, "This document is too large to download here. Please ask your clinic for a copy.")
	case errors.Is(err, errMissing):
		return nil, apperr.New(apperr.NotFound, "This document has no file.")
	case err != nil:
		return nil, err
	}
	return &Attachment{ContentType: mediaType(a), Title: str(a, "title"), Data: data}, nil
}

var (
	errTooLarge = errors.New("attachment too large")
	errMissing  = errors.New("attachment missing")
)

// attachmentData returns an attachment's bytes: inline data, or a Binary
// of the patient's read through the gateway. Anything else (a URL outside
// the record) is missing: nothing is fetched from elsewhere.
func (s *session) attachmentData(ctx context.Context, a map[string]any, limit int) ([]byte, error) {
	if a == nil {
		return nil, errMissing
	}
	if size, ok := float(a["size"]); ok && size > float64(limit) {
		return nil, errTooLarge
	}
	enc := str(a, "data")
	if enc == "" {
		typ, id, ok := fhir.ParseRef(str(a, "url"))
		if !ok || typ != "Binary" {
			return nil, errMissing
		}
		b, err := s.read(ctx, "Binary", id)
		if apperr.CodeOf(err) == apperr.NotFound {
			return nil, errMissing
		}
		if err != nil {
			return nil, err
		}
		enc = str(b, "data")
	}
	if base64.StdEncoding.DecodedLen(len(enc)) > limit+3 {
		return nil, errTooLarge
	}
	data, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(data) == 0 {
		return nil, errMissing
	}
	if len(data) > limit {
		return nil, errTooLarge
	}
	return data, nil
}
