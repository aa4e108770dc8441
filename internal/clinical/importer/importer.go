// Package importer loads FHIR R4 data from files into the embedded store:
// folders and files of .json (transaction, batch and collection Bundles, or
// one bare resource) and .ndjson (one resource per line). The files of one
// run are one set: references between them, conditional ones too, resolve
// whatever the order of the files, so a SMART Bulk Data export folder
// imports as it comes, and its log file is skipped, never stored. Each
// Bundle is atomic, importing unchanged data again creates no new versions,
// and every write is audited.
package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/failpoint"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Importer imports files into a store.
type Importer struct {
	Store *store.Store
	Audit *audit.Writer
	// Progress, when set, receives a progress bar redrawn in place (a
	// terminal); nil shows none.
	Progress io.Writer
	// MaxFileBytes bounds one .json file; 0 means 256 MiB.
	MaxFileBytes int64
}

// Counts are per resource type.
type Counts struct {
	Created, Updated, Unchanged, Deleted int
}

// Total is every resource the counts cover.
func (c Counts) Total() int { return c.Created + c.Updated + c.Unchanged + c.Deleted }

// Summary is what an import did.
type Summary struct {
	Files   int // every file read, whether stored, failed or skipped
	ByType  map[string]*Counts
	Failed  []error  // one per failed file, in path order, naming file and entry
	Skipped []string // "PATH: why", for files read but not data to store
}

// ndjsonChunk is how many .ndjson lines are stored per transaction.
const ndjsonChunk = 500

// Run imports every .json and .ndjson file under paths as one set, in an
// order that lets files refer to each other (order.go), in rounds that
// retry what waits for a conditional reference (waiting.go). A failed file
// does not stop the others; Summary.Failed lists the failures. The error
// is for problems that stop the whole import (a missing path).
func (im *Importer) Run(ctx context.Context, paths []string) (*Summary, error) {
	files, total, err := collect(paths)
	if err != nil {
		return nil, err
	}
	sum := &Summary{ByType: map[string]*Counts{}}
	var (
		done    int64
		failed  []*task
		pending []*task
	)
	finish := func(t *task) {
		sum.Files++
		done += t.size
		if t.err != nil {
			failed = append(failed, t)
		}
	}
	defer func() {
		// Rounds retry files out of order; failures are listed in path order.
		slices.SortStableFunc(failed, func(a, b *task) int { return strings.Compare(a.path, b.path) })
		for _, t := range failed {
			sum.Failed = append(sum.Failed, fmt.Errorf("%s: %s", t.path, failure(t)))
		}
	}()
	for _, f := range files {
		rank, skip := inspect(f.path)
		if skip != "" {
			sum.Skipped = append(sum.Skipped, f.path+": "+skip)
			finish(&task{file: f})
			continue
		}
		pending = append(pending, &task{file: f, rank: rank})
	}
	slices.SortStableFunc(pending, func(a, b *task) int { return a.rank - b.rank })
	for len(pending) > 0 {
		var waits []*task
		progressed := false
		for _, t := range pending {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
			im.progress(done, total, sum)
			stored, err := im.file(ctx, t, sum)
			progressed = progressed || stored
			var w *waiting
			if errors.As(err, &w) {
				t.err = w.Err
				waits = append(waits, t)
				continue
			}
			t.err = err
			finish(t)
		}
		if !progressed {
			// Nothing was stored, so nothing that waits can resolve now.
			for _, t := range waits {
				im.auditFailure(ctx)
				finish(t)
			}
			break
		}
		pending = waits
	}
	im.progress(total, total, sum)
	if im.Progress != nil {
		fmt.Fprintln(im.Progress)
	}
	return sum, nil
}

// task is one file of the set being imported.
type task struct {
	file
	rank int   // place in the order; lower goes first
	next int   // .ndjson: the first line (of those not empty) not stored yet
	err  error // why the last attempt failed
}

// failure says what happened to a file that failed: either it was stored
// and only the audit chaining waits, or the failed part stored nothing.
func failure(t *task) string {
	var su *StoredUnchained
	if errors.As(t.err, &su) {
		return su.Error()
	}
	msg := apperr.MessageOf(t.err)
	if !strings.EqualFold(filepath.Ext(t.path), ".ndjson") {
		msg += " (nothing of this file was stored)"
	}
	return msg
}

type file struct {
	path string
	size int64
}

func collect(paths []string) ([]file, int64, error) {
	var files []file
	var total int64
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			if ext != ".json" && ext != ".ndjson" {
				if path == p {
					return fmt.Errorf("%s: not a .json or .ndjson file", path)
				}
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, file{path, info.Size()})
			total += info.Size()
			return nil
		})
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return nil, 0, fmt.Errorf("%s: %v", pe.Path, pe.Err)
			}
			return nil, 0, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, total, nil
}

func (im *Importer) progress(done, total int64, sum *Summary) {
	if im.Progress == nil || total == 0 {
		return
	}
	const width = 30
	filled := int(done * width / total)
	n := 0
	for _, c := range sum.ByType {
		n += c.Total()
	}
	fmt.Fprintf(im.Progress, "\r[%s%s] %3d%%  %d resources", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done*100/total, n)
}

// file imports one file of the set, or the rest of it after a round that
// deferred it, and reports whether it stored anything. Its error is a
// *waiting when the file is to be tried again in the next round.
func (im *Importer) file(ctx context.Context, t *task, sum *Summary) (stored bool, err error) {
	if strings.EqualFold(filepath.Ext(t.path), ".ndjson") {
		return im.ndjson(ctx, t, sum)
	}
	max := im.MaxFileBytes
	if max == 0 {
		max = 256 << 20
	}
	f, err := os.Open(t.path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return false, err
	}
	if int64(len(raw)) > max {
		return false, apperr.New(apperr.TooLarge, "larger than %d bytes", max)
	}
	r, err := fhir.Parse(raw)
	if err != nil {
		return false, err
	}
	var b *fhir.Bundle
	if r.Type == "Bundle" {
		if b, err = fhir.ParseBundle(r.Raw); err != nil {
			return false, err
		}
	} else {
		b = &fhir.Bundle{ResourceType: "Bundle", Type: "collection", Entry: []*fhir.Entry{{Resource: r.Raw}}}
	}
	err = im.bundle(ctx, b, sum)
	return err == nil || errors.As(err, new(*StoredUnchained)), err
}

// ndjson checks every line first, so a bad line rejects the file before
// anything of it is stored, then stores it in chunks from t.next on.
func (im *Importer) ndjson(ctx context.Context, t *task, sum *Summary) (stored bool, err error) {
	storedBefore := func(n int) string {
		if n == 0 {
			return "nothing of the file was stored"
		}
		return fmt.Sprintf("lines 1 to %d were stored", n)
	}
	notStored := "nothing of this file was stored"
	if t.next > 0 { // a later round, and the file changed since
		notStored = storedBefore(t.next)
	}
	f, err := os.Open(t.path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := newScanner(f)
	var entries []*fhir.Entry
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		r, err := fhir.Parse(text)
		if err != nil {
			return false, apperr.Wrap(err, apperr.Invalid, "line %d: %s (%s)", line, apperr.MessageOf(err), notStored)
		}
		if r.Type == "Bundle" {
			return false, apperr.New(apperr.Invalid, "line %d: a Bundle in .ndjson is not supported; put it in a .json file (%s)", line, notStored)
		}
		entries = append(entries, &fhir.Entry{Resource: bytes.Clone(r.Raw)})
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	for start := t.next; start < len(entries); start += ndjsonChunk {
		part := entries[start:min(start+ndjsonChunk, len(entries))]
		if err := im.bundle(ctx, &fhir.Bundle{ResourceType: "Bundle", Type: "collection", Entry: part}, sum); err != nil {
			var su *StoredUnchained
			if errors.As(err, &su) {
				return true, err
			}
			var w *waiting
			waits := errors.As(err, &w)
			if waits {
				err = w.Err
			}
			err = apperr.Wrap(err, apperr.CodeOf(err), "lines %d to %d: %s (these lines were not stored; %s)", start+1, start+len(part), apperr.MessageOf(err), storedBefore(start))
			if waits {
				err = &waiting{Err: err}
			}
			return stored, err
		}
		t.next, stored = start+len(part), true
	}
	return stored, nil
}

func (im *Importer) bundle(ctx context.Context, b *fhir.Bundle, sum *Summary) error {
	if b.Type != "transaction" && b.Type != "batch" && b.Type != "collection" {
		return apperr.New(apperr.Invalid, "a %s Bundle cannot be imported; use a transaction, batch or collection", b.Type)
	}
	if b.Type == "batch" {
		b.Type = "transaction" // an import is atomic per Bundle
	}
	opts := store.BundleOptions{Import: true}
	opts.Audit = func(ctx context.Context, tx *sqldb.Tx, r *store.Result) error {
		// A Consent changes who may see what of its patient's record: the
		// patient's access version moves in the same transaction, so every
		// instance's compiled policy takes it at its next request.
		for _, w := range r.Written {
			if w != nil && w.Changed && w.Resource != nil && w.Resource.Type == "Consent" {
				for _, p := range w.Patients {
					if err := access.Bump(ctx, tx, p); err != nil {
						return err
					}
				}
			}
		}
		if im.Audit == nil {
			return nil
		}
		for _, rec := range importRecords(r) {
			if err := im.Audit.Stage(ctx, tx, rec); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := im.Store.Process(ctx, b, opts)
	if err != nil {
		if im.waitsForReference(ctx, b.Entry) {
			return &waiting{Err: err} // audited if it fails for good
		}
		im.auditFailure(ctx)
		return err
	}
	im.count(b, res, sum)
	if im.Audit == nil {
		return nil
	}
	failpoint.Hit("import-after-commit")
	// The data and its audit records are committed; chaining them is the
	// writer's part, and a crash here leaves them staged for the next start.
	if err := im.Audit.Chain(ctx); err != nil {
		return &StoredUnchained{Err: err}
	}
	return nil
}

// StoredUnchained is the error of a Bundle that was stored with its audit
// records, whose records could not be moved into the hash chain yet. They
// stay staged in the database and are chained when carefront next starts.
type StoredUnchained struct{ Err error }

func (e *StoredUnchained) Error() string {
	return "stored, with its audit records staged; they could not be added to the audit chain yet and will be when carefront next starts: " + e.Err.Error()
}

func (e *StoredUnchained) Unwrap() error { return e.Err }

// count adds what res wrote to the per-type counts.
func (im *Importer) count(b *fhir.Bundle, res *store.Result, sum *Summary) {
	for i, w := range res.Written {
		if w == nil {
			continue
		}
		typ := typeOf(b.Entry[i], w)
		c := sum.ByType[typ]
		if c == nil {
			c = &Counts{}
			sum.ByType[typ] = c
		}
		switch {
		case w.Status == 201:
			c.Created++
		case w.Status == 204:
			c.Deleted++
		case w.Changed:
			c.Updated++
		default:
			c.Unchanged++
		}
	}
}

func typeOf(e *fhir.Entry, w *Written) string {
	if w.Resource != nil {
		return w.Resource.Type
	}
	if e.Request != nil {
		t, _, _ := strings.Cut(strings.TrimPrefix(e.Request.URL, "/"), "/")
		t, _, _ = strings.Cut(t, "?")
		return t
	}
	return "unknown"
}

// Written is the store's per-entry outcome.
type Written = store.Written

// importRecords are the audit records of one stored Bundle: one Import
// record per patient whose data changed (and one for changed resources
// outside any patient's compartment).
func importRecords(res *store.Result) []audit.Record {
	byPatient := map[string][]audit.Entity{}
	for _, w := range res.Written {
		if w == nil || !w.Changed || w.Resource == nil {
			continue
		}
		ent := audit.Entity{What: w.Resource.Ref()}
		if len(w.Patients) == 0 {
			byPatient[""] = append(byPatient[""], ent)
		}
		for _, p := range w.Patients {
			byPatient[p] = append(byPatient[p], ent)
		}
	}
	keys := make([]string, 0, len(byPatient))
	for k := range byPatient {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	recs := make([]audit.Record, 0, len(keys))
	for _, p := range keys {
		rec := audit.Record{Type: audit.TypeImport, Subtype: []audit.Coding{audit.SubtypeCreate}, Action: audit.Create,
			Outcome: audit.Success, Client: "carefront-import", Entities: byPatient[p]}
		if p != "" {
			rec.Patient = "Patient/" + p
		}
		recs = append(recs, rec)
	}
	return recs
}

func (im *Importer) auditFailure(ctx context.Context) {
	if im.Audit == nil {
		return
	}
	im.Audit.Append(ctx, audit.Record{Type: audit.TypeImport, Subtype: []audit.Coding{audit.SubtypeCreate}, Action: audit.Create,
		Outcome: audit.MinorFailure, Reason: "invalid-bundle", Client: "carefront-import"})
}
