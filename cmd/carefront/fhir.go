package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
)

// The fhir commands are the operator's view of the embedded store, with
// the store's own semantics. They act as the system, not for a person, and
// every use is audited as the command-line client.

func runFHIRRead(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, fs, err := parseFlagsArgs("fhir read", "Prints one resource of the embedded store as JSON.\n\nUsage: carefront fhir read [flags] Type/id", 1, args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	typ, id, ok := strings.Cut(fs.Arg(0), "/")
	if !ok || fs.NArg() > 1 {
		return &usageError{"fhir read: give one Type/id, e.g. Patient/123"}
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := store.New(db).Read(ctx, typ, id)
	rec := audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeRead}, Action: audit.Read,
		Outcome: audit.Success, Client: "carefront-cli"}
	if err != nil {
		rec.Outcome, rec.Reason = audit.MinorFailure, string(apperr.CodeOf(err))
	} else {
		rec.Entities = []audit.Entity{{What: r.Ref()}}
		if tree, derr := fhir.Decode(r.Raw); derr == nil {
			if pats := fhir.Compartments(r.Type, r.ID, tree); len(pats) > 0 {
				rec.Patient = "Patient/" + pats[0]
			}
		}
	}
	if aerr := finishAudit(ctx, aw, rec); err == nil {
		err = aerr
	}
	if err != nil {
		return cliError(err)
	}
	return printJSON(stdout, r.Raw)
}

func runFHIRSearch(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var lenient bool
	cfg, fs, err := parseFlagsArgs("fhir search", "Runs a FHIR search on the embedded store and prints the searchset Bundle.\nUnknown parameters are an error unless --lenient is given.\n\nUsage: carefront fhir search [flags] 'Type?param=value&...'", 1, args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&lenient, "lenient", false, "ignore unknown search parameters (Prefer: handling=lenient)")
		})
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return &usageError{"fhir search: give one search in quotes, e.g. 'Observation?patient=123&code=4548-4'"}
	}
	typ, rawQuery, _ := strings.Cut(fs.Arg(0), "?")
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return &usageError{"fhir search: the query is not URL-encoded parameters"}
	}
	q, err := fhir.ParseQuery(typ, vals, lenient)
	if err != nil {
		return cliError(err)
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	page, err := store.New(db).Search(ctx, q)
	rec := audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeSearch}, Action: audit.Execute,
		Outcome: audit.Success, Client: "carefront-cli"}
	for _, c := range q.Clauses {
		if c.Param.Name == "patient" && len(c.Refs) == 1 {
			rec.Patient = "Patient/" + c.Refs[0].ID
		}
	}
	if err != nil {
		rec.Outcome, rec.Reason = audit.MinorFailure, string(apperr.CodeOf(err))
	} else {
		for _, m := range append(append([]*fhir.Resource{}, page.Matches...), page.Included...) {
			rec.Entities = append(rec.Entities, audit.Entity{What: m.Ref()})
		}
	}
	if aerr := finishAudit(ctx, aw, rec); err == nil {
		err = aerr
	}
	if err != nil {
		return cliError(err)
	}
	base := cfg.BaseURL
	if base != "" {
		base = strings.TrimSuffix(base, "/") + "/fhir/R4"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // links keep their & as they are
	if err := enc.Encode(fhir.SearchBundle(base, q, page)); err != nil {
		return err
	}
	return printJSON(stdout, b.Bytes())
}

func finishAudit(ctx context.Context, aw *audit.Writer, rec audit.Record) error {
	err := aw.Append(ctx, rec)
	if cerr := aw.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// cliError turns a coded error into one line: the user-safe message, exit 1.
func cliError(err error) error {
	if apperr.CodeOf(err) == apperr.Internal {
		return err
	}
	return fmt.Errorf("%s", apperr.MessageOf(err))
}

func printJSON(w io.Writer, raw []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}
