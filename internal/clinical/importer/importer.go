// Package importer loads FHIR R4 data from files into the embedded store:
// folders and files of .json (transaction, batch and collection Bundles, or
// one bare resource) and .ndjson (one resource per line). Each Bundle is
// atomic, importing unchanged data again creates no new versions, and every
// write is audited.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
	Files  int
	ByType map[string]*Counts
	Failed []error // one per failed file or Bundle, naming file and entry
}

// ndjsonChunk is how many .ndjson lines are stored per transaction.
const ndjsonChunk = 500

// Run imports every .json and .ndjson file under paths, in name order. A
// failed file does not stop the others; Summary.Failed lists the failures.
// The error is for problems that stop the whole import (a missing path).
func (im *Importer) Run(ctx context.Context, paths []string) (*Summary, error) {
	files, total, err := collect(paths)
	if err != nil {
		return nil, err
	}
	sum := &Summary{ByType: map[string]*Counts{}}
	var done int64
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		im.progress(done, total, sum)
		if err := im.file(ctx, f.path, sum); err != nil {
			msg := failure(err)
			if !strings.EqualFold(filepath.Ext(f.path), ".ndjson") && !errors.As(err, new(*StoredUnchained)) {
				msg += " (nothing of this file was stored)"
			}
			sum.Failed = append(sum.Failed, fmt.Errorf("%s: %s", f.path, msg))
		}
		sum.Files++
		done += f.size
	}
	im.progress(total, total, sum)
	if im.Progress != nil {
		fmt.Fprintln(im.Progress)
	}
	return sum, nil
}

// failure says what happened to a file that failed: either it was stored
// and only the audit chaining waits, or the failed part stored nothing.
func failure(err error) string {
	var su *StoredUnchained
	if errors.As(err, &su) {
		return su.Error()
	}
	return apperr.MessageOf(err)
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

func (im *Importer) file(ctx context.Context, path string, sum *Summary) error {
	if strings.EqualFold(filepath.Ext(path), ".ndjson") {
		return im.ndjson(ctx, path, sum)
	}
	max := im.MaxFileBytes
	if max == 0 {
		max = 256 << 20
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return err
	}
	if int64(len(raw)) > max {
		return apperr.New(apperr.TooLarge, "larger than %d bytes", max)
	}
	r, err := fhir.Parse(raw)
	if err != nil {
		return err
	}
	var b *fhir.Bundle
	if r.Type == "Bundle" {
		if b, err = fhir.ParseBundle(r.Raw); err != nil {
			return err
		}
	} else {
		b = &fhir.Bundle{ResourceType: "Bundle", Type: "collection", Entry: []*fhir.Entry{{Resource: r.Raw}}}
	}
	return im.bundle(ctx, b, sum)
}

// ndjson checks every line first, so a bad line rejects the file before
// anything of it is stored, then stores it in chunks.
func (im *Importer) ndjson(ctx context.Context, path string, sum *Summary) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var entries []*fhir.Entry
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		r, err := fhir.Parse(text)
		if err != nil {
			return apperr.Wrap(err, apperr.Invalid, "line %d: %s (nothing of this file was stored)", line, apperr.MessageOf(err))
		}
		if r.Type == "Bundle" {
			return apperr.New(apperr.Invalid, "line %d: a Bundle in .ndjson is not supported; put it in a .json file (nothing of this file was stored)", line)
		}
		entries = append(entries, &fhir.Entry{Resource: bytes.Clone(r.Raw)})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for start := 0; start < len(entries); start += ndjsonChunk {
		part := entries[start:min(start+ndjsonChunk, len(entries))]
		if err := im.bundle(ctx, &fhir.Bundle{ResourceType: "Bundle", Type: "collection", Entry: part}, sum); err != nil {
			var su *StoredUnchained
			if errors.As(err, &su) {
				return err
			}
			stored := "nothing of the file was stored"
			if start > 0 {
				stored = fmt.Sprintf("lines 1 to %d were stored", start)
			}
			return apperr.Wrap(err, apperr.CodeOf(err), "lines %d to %d: %s (these lines were not stored; %s)", start+1, start+len(part), apperr.MessageOf(err), stored)
		}
	}
	return nil
}

func (im *Importer) bundle(ctx context.Context, b *fhir.Bundle, sum *Summary) error {
	if b.Type != "transaction" && b.Type != "batch" && b.Type != "collection" {
		return apperr.New(apperr.Invalid, "a %s Bundle cannot be imported; use a transaction, batch or collection", b.Type)
	}
	if b.Type == "batch" {
		b.Type = "transaction" // an import is atomic per Bundle
	}
	var res *store.Result
	opts := store.BundleOptions{Import: true}
	if im.Audit != nil {
		opts.Audit = func(ctx context.Context, tx *sqldb.Tx, r *store.Result) error {
			for _, rec := range importRecords(r) {
				if err := im.Audit.Stage(ctx, tx, rec); err != nil {
					return err
				}
			}
			return nil
		}
	}
	res, err := im.Store.Process(ctx, b, opts)
	if err != nil {
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
