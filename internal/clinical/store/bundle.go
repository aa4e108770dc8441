package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// BundleOptions change how Process treats a Bundle.
type BundleOptions struct {
	// Import keeps the ids a Bundle brings: a POST whose fullUrl is
	// urn:uuid:X (or whose resource has an id) writes TYPE/X as an update,
	// so importing the same Bundle twice creates no new versions. Import
	// also accepts collection Bundles, stored atomically like transactions.
	Import bool
	// Audit, when set, is called inside the Bundle's transaction after
	// every entry was written, to stage the change's audit records there
	// (audit.Writer.Stage): the data and its records commit together or
	// not at all. Its error rolls the whole Bundle back.
	Audit func(ctx context.Context, tx *sqldb.Tx, res *Result) error
}

// Result is the outcome of a Bundle: the response Bundle and, per entry,
// what was written (nil for entries that wrote nothing).
type Result struct {
	Response *fhir.Bundle
	Written  []*Written
}

// entry is one Bundle entry being processed.
type entry struct {
	index    int
	method   string
	typ, id  string // target; id empty for a POST not yet assigned
	cond     string // conditional URL query (PUT/DELETE Type?x) or ifNoneExist
	ifMatch  string
	resource *fhir.Resource
	fullURL  string
	skip     bool // conditional create that matched
}

// Process runs a transaction or batch Bundle (and, with Import, a
// collection). A transaction is atomic: one bad entry rejects all of it,
// with an error naming the entry's index and the reason, and nothing is
// stored. A batch runs each entry on its own and reports each outcome.
func (s *Store) Process(ctx context.Context, b *fhir.Bundle, opts BundleOptions) (*Result, error) {
	switch b.Type {
	case "transaction":
	case "batch":
		return s.batch(ctx, b, opts)
	case "collection":
		if !opts.Import {
			return nil, apperr.New(apperr.Invalid, "a collection Bundle is stored by import only; send a transaction or a batch")
		}
	default:
		return nil, apperr.New(apperr.Invalid, "a %s Bundle cannot be processed; send a transaction or a batch", clip(b.Type))
	}
	entries, err := s.plan(b, opts)
	if err != nil {
		return nil, err
	}
	var res *Result
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var err error
		res, err = s.runTransaction(ctx, tx, entries, opts)
		if err != nil || opts.Audit == nil {
			return err
		}
		return opts.Audit(ctx, tx, res)
	})
	if err != nil {
		return nil, err
	}
	res.Response.Type = b.Type + "-response"
	if b.Type == "collection" {
		res.Response.Type = "transaction-response"
	}
	return res, nil
}

func entryErr(i int, err error) error {
	return apperr.Wrap(err, apperr.CodeOf(err), "entry %d: %s", i, apperr.MessageOf(err))
}

// plan checks every entry and works out what it asks for, without touching
// the database.
func (s *Store) plan(b *fhir.Bundle, opts BundleOptions) ([]*entry, error) {
	var entries []*entry
	fullURLs := map[string]int{}
	for i, e := range b.Entry {
		if e == nil {
			return nil, apperr.New(apperr.Invalid, "entry %d is empty", i)
		}
		en := &entry{index: i, fullURL: e.FullURL}
		if e.FullURL != "" {
			if j, dup := fullURLs[e.FullURL]; dup {
				return nil, apperr.New(apperr.Invalid, "entry %d: fullUrl repeats the fullUrl of entry %d", i, j)
			}
			fullURLs[e.FullURL] = i
		}
		if len(e.Resource) > 0 {
			r, err := parseForWrite(e.Resource)
			if err != nil {
				return nil, entryErr(i, err)
			}
			if r.Type == "Bundle" && !opts.Import {
				return nil, apperr.New(apperr.Invalid, "entry %d: a Bundle inside a transaction is not supported", i)
			}
			en.resource = r
		}
		if err := s.planRequest(en, e, b.Type, opts); err != nil {
			return nil, entryErr(i, err)
		}
		entries = append(entries, en)
	}
	return entries, nil
}

func (s *Store) planRequest(en *entry, e *fhir.Entry, bundleType string, opts BundleOptions) error {
	r := en.resource
	if bundleType == "collection" || e.Request == nil {
		if bundleType != "collection" {
			return apperr.New(apperr.Invalid, "has no request")
		}
		if r == nil {
			return apperr.New(apperr.Invalid, "has no resource")
		}
		en.method, en.typ, en.id = "PUT", r.Type, r.ID
		if en.id == "" {
			en.id = idFromFullURL(e.FullURL)
		}
		if en.id == "" {
			en.method = "POST"
		}
		return nil
	}
	en.method = strings.ToUpper(e.Request.Method)
	en.ifMatch = e.Request.IfMatch
	path, query, _ := strings.Cut(strings.TrimPrefix(e.Request.URL, "/"), "?")
	parts := strings.Split(path, "/")
	switch en.method {
	case "POST":
		if r == nil {
			return apperr.New(apperr.Invalid, "a POST needs a resource")
		}
		if len(parts) != 1 || parts[0] != r.Type {
			return apperr.New(apperr.Invalid, "request.url must be %s for a POST of a %s", r.Type, r.Type)
		}
		en.typ, en.cond = r.Type, e.Request.IfNoneExist
		if opts.Import {
			if id := r.ID; id != "" {
				en.id = id
			} else {
				en.id = idFromFullURL(e.FullURL)
			}
			// With ifNoneExist it stays a conditional create, keeping its
			// id only if it creates (runTransaction); a plain one becomes
			// an update by id, so re-importing creates no new versions.
			if en.id != "" && en.cond == "" {
				en.method = "PUT"
			}
		}
	case "PUT":
		if r == nil {
			return apperr.New(apperr.Invalid, "a PUT needs a resource")
		}
		if len(parts) != 2 && !(len(parts) == 1 && query != "") {
			return apperr.New(apperr.Invalid, "request.url must be Type/id (or Type?search) for a PUT")
		}
		en.typ = parts[0]
		if en.typ != r.Type {
			return apperr.New(apperr.Invalid, "request.url names %s but the resource is a %s", clip(en.typ), r.Type)
		}
		if len(parts) == 2 {
			en.id = parts[1]
			if !fhir.ValidID(en.id) {
				return apperr.New(apperr.Invalid, "request.url has an id that is not a valid FHIR id")
			}
			if r.ID != "" && r.ID != en.id {
				return apperr.New(apperr.Invalid, "the resource's id differs from the id in request.url")
			}
		} else {
			en.cond = query
		}
	case "DELETE":
		if len(parts) == 2 {
			en.typ, en.id = parts[0], parts[1]
			if err := checkTypeID(en.typ, en.id); err != nil {
				return err
			}
		} else if len(parts) == 1 && query != "" {
			en.typ, en.cond = parts[0], query
		} else {
			return apperr.New(apperr.Invalid, "request.url must be Type/id (or Type?search) for a DELETE")
		}
	case "GET":
		if bundleType == "transaction" {
			return apperr.New(apperr.Invalid, "GET entries are answered in batch Bundles only")
		}
		en.typ = parts[0]
		if len(parts) == 2 {
			en.id = parts[1]
		}
		en.cond = query
		if !fhir.KnownType(en.typ) {
			return apperr.New(apperr.Invalid, "request.url names no resource type")
		}
	default:
		return apperr.New(apperr.Invalid, "request.method %q is not supported (use POST, PUT, DELETE or GET)", clip(e.Request.Method))
	}
	return nil
}

// idFromFullURL returns X of urn:uuid:X, or "" when that is no FHIR id.
func idFromFullURL(u string) string {
	id, ok := strings.CutPrefix(u, "urn:uuid:")
	if !ok || !fhir.ValidID(id) {
		return ""
	}
	return id
}

// runTransaction resolves ids and references, then writes every entry in
// tx: deletes first, then creates and updates, as FHIR orders them.
func (s *Store) runTransaction(ctx context.Context, tx *sqldb.Tx, entries []*entry, opts BundleOptions) (*Result, error) {
	refs := map[string]string{} // fullUrl -> Type/id
	for _, en := range entries {
		if en.method == "DELETE" && en.cond != "" {
			id, err := s.resolveConditional(ctx, tx, en.typ, en.cond, true)
			if err != nil {
				return nil, entryErr(en.index, err)
			}
			en.id = id // "" means nothing to delete
		}
		if en.method != "POST" && en.method != "PUT" {
			continue
		}
		if en.method == "PUT" && en.cond != "" {
			id, err := s.resolveConditional(ctx, tx, en.typ, en.cond, true)
			if err != nil {
				return nil, entryErr(en.index, err)
			}
			if id == "" {
				id = s.newID()
			}
			en.id = id
		}
		if en.method == "POST" {
			if en.cond != "" {
				id, err := s.resolveConditional(ctx, tx, en.typ, en.cond, true)
				if err != nil {
					return nil, entryErr(en.index, err)
				}
				if id != "" {
					en.id, en.skip = id, true
				} else if en.id != "" {
					// An import's own id: stored under it, as an update
					// by id (update-as-create).
					en.method, en.cond = "PUT", ""
				}
			}
			if en.id == "" {
				en.id = s.newID()
			}
		}
		if en.fullURL != "" {
			refs[en.fullURL] = en.typ + "/" + en.id
		}
	}
	// Rewrite references to entries of this Bundle and resolve
	// conditional references.
	for _, en := range entries {
		if en.resource == nil || en.skip || (en.method != "POST" && en.method != "PUT") {
			continue
		}
		raw, err := fhir.RewriteReferences(en.resource.Raw, func(ref string) (string, error) {
			if to, ok := refs[ref]; ok {
				return to, nil
			}
			if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
				return "", apperr.New(apperr.Invalid, "reference %s is to no entry of this Bundle", clip(ref))
			}
			if typ, query, ok := strings.Cut(ref, "?"); ok && fhir.KnownType(typ) {
				id, err := s.resolveConditional(ctx, tx, typ, query, false)
				if err != nil {
					return "", err
				}
				return typ + "/" + id, nil
			}
			return ref, nil
		})
		if err != nil {
			return nil, entryErr(en.index, err)
		}
		en.resource.Raw = raw
	}
	res := &Result{Response: &fhir.Bundle{ResourceType: "Bundle"}, Written: make([]*Written, len(entries))}
	res.Response.Entry = make([]*fhir.Entry, len(entries))
	b := newBatch(tx)
	for _, pass := range []string{"DELETE", "WRITE"} {
		if pass == "WRITE" {
			var keys []key
			for _, en := range entries {
				if en.method == "POST" || en.method == "PUT" {
					keys = append(keys, key{en.typ, en.id})
				}
			}
			if err := b.prefetch(ctx, keys); err != nil {
				return nil, err
			}
		}
		for _, en := range entries {
			var w *Written
			var err error
			switch {
			case pass == "DELETE" && en.method == "DELETE":
				if en.id == "" {
					w = &Written{Status: http.StatusNoContent}
				} else {
					w, err = s.del(ctx, tx, en.typ, en.id)
				}
			case pass == "WRITE" && en.skip:
				r, rerr := readCurrent(ctx, tx, en.typ, en.id)
				w, err = &Written{Resource: r, Status: http.StatusOK}, rerr
			case pass == "WRITE" && (en.method == "POST" || en.method == "PUT"):
				w, err = s.put(ctx, b, en.resource, en.id, en.ifMatch, en.method == "POST" && !opts.Import)
			default:
				continue
			}
			if err != nil {
				return nil, entryErr(en.index, err)
			}
			res.Written[en.index] = w
			res.Response.Entry[en.index] = responseEntry(w)
		}
	}
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// resolveConditional finds the one resource a conditional URL names. With
// allowNone, no match gives ""; more than one match is always an error.
func (s *Store) resolveConditional(ctx context.Context, tx *sqldb.Tx, typ, query string, allowNone bool) (string, error) {
	vals, err := url.ParseQuery(query)
	if err != nil || len(vals) == 0 {
		return "", apperr.New(apperr.Invalid, "conditional reference %s?... is not a search", typ)
	}
	q, err := fhir.ParseQuery(typ, vals, false)
	if err != nil {
		return "", err
	}
	q.Count, q.Includes, q.Total, q.Sort = 2, nil, false, ""
	page, err := s.searchTx(ctx, tx, q)
	if err != nil {
		return "", err
	}
	switch len(page.Matches) {
	case 0:
		if allowNone {
			return "", nil
		}
		return "", apperr.New(apperr.Invalid, "conditional reference to %s matches no resource", typ)
	case 1:
		return page.Matches[0].ID, nil
	}
	return "", apperr.New(apperr.Precondition, "conditional reference to %s matches more than one resource", typ)
}

func responseEntry(w *Written) *fhir.Entry {
	resp := &fhir.EntryResponse{Status: fhir.StatusLine(w.Status)}
	e := &fhir.Entry{Response: resp}
	if r := w.Resource; r != nil {
		resp.Location = r.Type + "/" + r.ID + "/_history/" + r.VersionID
		resp.Etag = `W/"` + r.VersionID + `"`
		resp.LastModified = r.LastUpdated.Format(time.RFC3339Nano)
		e.FullURL = r.Type + "/" + r.ID
	}
	return e
}

// batch runs each entry on its own; a failed entry gets an
// OperationOutcome and does not stop the others.
func (s *Store) batch(ctx context.Context, b *fhir.Bundle, opts BundleOptions) (*Result, error) {
	res := &Result{Response: &fhir.Bundle{ResourceType: "Bundle", Type: "batch-response"}, Written: make([]*Written, len(b.Entry))}
	res.Response.Entry = make([]*fhir.Entry, len(b.Entry))
	for i, e := range b.Entry {
		one := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: []*fhir.Entry{e}}
		var (
			out *fhir.Entry
			w   *Written
			err error
		)
		if e != nil && e.Request != nil && strings.EqualFold(e.Request.Method, "GET") {
			out, err = s.batchGet(ctx, e.Request.URL)
		} else {
			if e != nil && e.FullURL != "" && len(e.Resource) > 0 {
				// References to other entries cannot be resolved in a batch.
				one.Entry = []*fhir.Entry{{FullURL: e.FullURL, Resource: e.Resource, Request: e.Request}}
			}
			var r *Result
			r, err = s.Process(ctx, one, opts)
			if err == nil {
				out, w = r.Response.Entry[0], r.Written[0]
			}
		}
		if err != nil {
			oc, status := fhir.OutcomeJSON(stripEntry(err))
			out = &fhir.Entry{Response: &fhir.EntryResponse{Status: fhir.StatusLine(status), Outcome: oc}}
		}
		res.Response.Entry[i], res.Written[i] = out, w
	}
	return res, nil
}

// stripEntry drops the "entry 0:" the one-entry transaction put in front.
func stripEntry(err error) error {
	msg := strings.TrimPrefix(apperr.MessageOf(err), "entry 0: ")
	return apperr.Wrap(err, apperr.CodeOf(err), "%s", msg)
}

func (s *Store) batchGet(ctx context.Context, u string) (*fhir.Entry, error) {
	path, query, _ := strings.Cut(strings.TrimPrefix(u, "/"), "?")
	parts := strings.Split(path, "/")
	switch {
	case len(parts) == 2 && query == "":
		r, err := s.Read(ctx, parts[0], parts[1])
		if err != nil {
			return nil, err
		}
		return &fhir.Entry{FullURL: r.Ref(), Resource: r.Raw, Response: &fhir.EntryResponse{Status: "200 OK", Etag: `W/"` + r.VersionID + `"`}}, nil
	case len(parts) == 1:
		vals, err := url.ParseQuery(query)
		if err != nil {
			return nil, apperr.New(apperr.Invalid, "request.url has a malformed query")
		}
		q, err := fhir.ParseQuery(parts[0], vals, false)
		if err != nil {
			return nil, err
		}
		page, err := s.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		sb := fhir.SearchBundle("", q, page)
		raw, _ := json.Marshal(sb)
		return &fhir.Entry{Resource: raw, Response: &fhir.EntryResponse{Status: "200 OK"}}, nil
	}
	return nil, apperr.New(apperr.Invalid, "request.url %s is neither a read nor a search", fmt.Sprintf("%.40s", u))
}
