package fhir

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"carefront/internal/apperr"
)

// Bundle is FHIR's Bundle, with entries' resources kept as raw JSON.
type Bundle struct {
	ResourceType string   `json:"resourceType"`
	ID           string   `json:"id,omitempty"`
	Meta         *Meta    `json:"meta,omitempty"`
	Type         string   `json:"type"`
	Total        *int     `json:"total,omitempty"`
	Link         []Link   `json:"link,omitempty"`
	Entry        []*Entry `json:"entry,omitempty"`
}

// Meta is the part of Resource.meta a Bundle carries.
type Meta struct {
	LastUpdated string `json:"lastUpdated,omitempty"`
}

// Link is a Bundle link (self, next).
type Link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// Entry is one Bundle entry.
type Entry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *EntrySearch    `json:"search,omitempty"`
	Request  *EntryRequest   `json:"request,omitempty"`
	Response *EntryResponse  `json:"response,omitempty"`
}

// EntrySearch says why an entry is in a searchset: "match" or "include".
type EntrySearch struct {
	Mode string `json:"mode"`
}

// EntryRequest is the request of a transaction or batch entry.
type EntryRequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	IfMatch     string `json:"ifMatch,omitempty"`
	IfNoneExist string `json:"ifNoneExist,omitempty"`
}

// EntryResponse is the outcome of one transaction or batch entry.
type EntryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// ParseBundle reads a Bundle, checking its shape but not its entries'
// resources (the store checks those one by one, naming the entry).
func ParseBundle(raw json.RawMessage) (*Bundle, error) {
	var b Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, apperr.New(apperr.Invalid, "the Bundle is not valid (%s)", jsonProblem(err))
	}
	if b.ResourceType != "Bundle" {
		return nil, apperr.New(apperr.Invalid, "expected a Bundle")
	}
	switch b.Type {
	case "transaction", "batch", "collection", "searchset", "history", "document", "message",
		"transaction-response", "batch-response":
	default:
		return nil, apperr.New(apperr.Invalid, "Bundle.type %q is not a FHIR Bundle type", clip(b.Type))
	}
	return &b, nil
}

// Outcome is a FHIR OperationOutcome.
type Outcome struct {
	ResourceType string         `json:"resourceType"`
	Issue        []OutcomeIssue `json:"issue"`
}

// OutcomeIssue is one issue of an OperationOutcome.
type OutcomeIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// issueCode maps carefront's error codes to FHIR issue types.
var issueCode = map[apperr.Code]string{
	apperr.Invalid:       "invalid",
	apperr.NotFound:      "not-found",
	apperr.Gone:          "deleted",
	apperr.Unauthorized:  "login",
	apperr.Forbidden:     "forbidden",
	apperr.Conflict:      "conflict",
	apperr.Precondition:  "conflict",
	apperr.TooLarge:      "too-costly",
	apperr.RateLimited:   "throttled",
	apperr.Unavailable:   "transient",
	apperr.NotAcceptable: "not-supported",
	apperr.Internal:      "exception",
}

// OutcomeOf turns an error into an OperationOutcome and its HTTP status.
// The diagnostics are the error's user-safe message; internal causes are
// never shown.
func OutcomeOf(err error) (Outcome, int) {
	code := apperr.CodeOf(err)
	ic, ok := issueCode[code]
	if !ok {
		ic = "exception"
	}
	msg := apperr.MessageOf(err)
	var ue *UnsupportedParamError
	if errors.As(err, &ue) {
		ic = "not-supported"
	}
	return Outcome{ResourceType: "OperationOutcome", Issue: []OutcomeIssue{{Severity: "error", Code: ic, Diagnostics: msg}}}, apperr.HTTPStatus(err)
}

// OutcomeJSON is OutcomeOf marshalled.
func OutcomeJSON(err error) (json.RawMessage, int) {
	o, status := OutcomeOf(err)
	b, _ := json.Marshal(o)
	return b, status
}

// StatusLine renders an HTTP status as a Bundle response status ("201 Created").
func StatusLine(code int) string {
	return itoa(code) + " " + http.StatusText(code)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Page is one page of search results, from the embedded store or from an
// upstream server.
type Page struct {
	Matches  []*Resource
	Included []*Resource
	Total    *int   // with _total=accurate
	Next     string // cursor of the next page; empty on the last
	// Held are results the patient chose to see only after review, not
	// yet released (the gateway fills it; never sent to apps).
	Held []*Resource
}

// SearchBundle renders a page as a searchset Bundle with self and next
// links under base (e.g. https://portal.example/fhir/R4).
func SearchBundle(base string, q *Query, page *Page) *Bundle {
	b := &Bundle{ResourceType: "Bundle", Type: "searchset", Total: page.Total}
	link := func(cursor string) string {
		u := q.Type + "?" + q.Encode(cursor)
		if base != "" {
			u = strings.TrimSuffix(base, "/") + "/" + u
		}
		return u
	}
	b.Link = append(b.Link, Link{Relation: "self", URL: link(q.Cursor)})
	if page.Next != "" {
		b.Link = append(b.Link, Link{Relation: "next", URL: link(page.Next)})
	}
	for _, m := range page.Matches {
		b.Entry = append(b.Entry, &Entry{FullURL: fullURL(base, m), Resource: m.Raw, Search: &EntrySearch{Mode: "match"}})
	}
	for _, m := range page.Included {
		b.Entry = append(b.Entry, &Entry{FullURL: fullURL(base, m), Resource: m.Raw, Search: &EntrySearch{Mode: "include"}})
	}
	return b
}

func fullURL(base string, r *Resource) string {
	if base == "" {
		return r.Ref()
	}
	return strings.TrimSuffix(base, "/") + "/" + r.Ref()
}
