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

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
)

// The fhir commands are the operator's view of the embedded store, with
// the store's own semantics. They act as the system, not for a person, and
// every use is audited as the command-line client.

// operator is who the command-line tools act as: the access decision lets
// an operator read everything, and the gateway audits every use.
var operator = clinical.Request{Principal: access.Principal{Client: "carefront-cli", Role: access.RoleOperator}}

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
	gw := &clinical.Gateway{Source: store.New(db), Audit: aw}
	r, err := gw.Read(ctx, operator, typ, id)
	if cerr := aw.Close(ctx); err == nil {
		err = cerr
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
	gw := &clinical.Gateway{Source: store.New(db), Audit: aw}
	page, err := gw.Search(ctx, operator, q)
	if cerr := aw.Close(ctx); err == nil {
		err = cerr
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
