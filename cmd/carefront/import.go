package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/config"
	"carefront/internal/consent"
	"carefront/internal/sqldb"
)

// importFailed exits 1 after the summary names the failed files.
type importFailed struct{ n int }

func (e *importFailed) Error() string {
	return fmt.Sprintf("import: %d file(s) or Bundle(s) failed; the lines above say what of each was stored", e.n)
}

func runImport(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, fs, err := parseFlagsArgs("import", "Imports FHIR R4 data into the embedded store: files and folders (searched\nrecursively) of .json (transaction, batch or collection Bundles, or one\nresource) and .ndjson (one resource per line). The files are one set:\nreferences between them, conditional ones too, resolve whatever the\norder, so a SMART Bulk Data export folder imports as it is (its log file\nis skipped). Each Bundle is stored whole or not at all, an .ndjson file\nin chunks; importing unchanged data again creates no new versions.\nPrints a summary per resource type and exits 1 if any file failed.\n\nUsage: carefront import [flags] PATH...", 1, args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	db, aw, st, err := openWithStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	im := &importer.Importer{Store: st, Audit: aw}
	if isTerminal(os.Stderr) {
		im.Progress = os.Stderr
	}
	sum, err := im.Run(ctx, fs.Args())
	if cerr := aw.Close(ctx); err == nil {
		err = cerr
	}
	if sum != nil {
		printSummary(stdout, sum)
	}
	if err != nil {
		return err
	}
	if len(sum.Failed) > 0 {
		return &importFailed{len(sum.Failed)}
	}
	return nil
}

func printSummary(w io.Writer, sum *importer.Summary) {
	types := make([]string, 0, len(sum.ByType))
	for t := range sum.ByType {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintf(w, "%-24s %8s %8s %10s %8s\n", "resource type", "created", "updated", "unchanged", "deleted")
	var all importer.Counts
	for _, t := range types {
		c := sum.ByType[t]
		fmt.Fprintf(w, "%-24s %8d %8d %10d %8d\n", t, c.Created, c.Updated, c.Unchanged, c.Deleted)
		all.Created += c.Created
		all.Updated += c.Updated
		all.Unchanged += c.Unchanged
		all.Deleted += c.Deleted
	}
	fmt.Fprintf(w, "%-24s %8d %8d %10d %8d\n", "total", all.Created, all.Updated, all.Unchanged, all.Deleted)
	fmt.Fprintf(w, "%d file(s) read, %d failed", sum.Files, len(sum.Failed))
	if len(sum.Skipped) > 0 {
		fmt.Fprintf(w, ", %d skipped", len(sum.Skipped))
	}
	fmt.Fprintln(w)
	for _, s := range sum.Skipped {
		fmt.Fprintln(w, "skipped:", s)
	}
	for _, f := range sum.Failed {
		fmt.Fprintln(w, "failed:", strings.ReplaceAll(f.Error(), "\n", " "))
	}
}

// openWithAudit opens and migrates the database and starts an audit writer
// for a command-line tool.
func openWithAudit(ctx context.Context, cfg config.Config) (*sqldb.DB, *audit.Writer, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	keys, err := auditKeys(cfg, true)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, audit.NewWriter(db, audit.Options{Signer: keys.Primary(), Observer: "carefront-cli", MACKeys: keys.Trust().MACKeys,
		CheckpointEvery: cfg.AuditCheckpoint, CheckpointInterval: cfg.AuditCheckpointInterval}), nil
}

// newStore returns the embedded FHIR store with the labelling every
// process writing to it must share: the built-in label table and the
// configured 42 CFR Part 2 sources.
func newStore(cfg config.Config, db *sqldb.DB) (*store.Store, error) {
	labeler, err := consent.LoadLabels()
	if err != nil {
		return nil, err
	}
	labeler.Part2Sources = cfg.Part2Sources
	s := store.New(db)
	s.Labels = labeler
	return s, nil
}

// openWithStore is openWithAudit with the embedded FHIR store
// (newStore) for commands that write clinical records.
func openWithStore(ctx context.Context, cfg config.Config) (*sqldb.DB, *audit.Writer, *store.Store, error) {
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := newStore(cfg, db)
	if err != nil {
		aw.Close(ctx)
		db.Close()
		return nil, nil, nil, err
	}
	return db, aw, st, nil
}

// agePolicy is the clinic's age policy for parents' grants.
func agePolicy(cfg config.Config) access.Ages {
	return access.Ages{Teen: cfg.TeenAge, Adult: cfg.AdultAge}
}

func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// finishAudit appends a command's audit record and closes the writer.
func finishAudit(ctx context.Context, aw *audit.Writer, rec audit.Record) error {
	err := aw.Append(ctx, rec)
	if cerr := aw.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
