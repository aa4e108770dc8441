package main

import (
	"context"
	"errors"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/config"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// patientArg reads a --patient Patient/ID value.
func patientArg(cmd, v string) (string, error) {
	typ, id, ok := strings.Cut(v, "/")
	if !ok || typ != "Patient" || !fhir.ValidID(id) {
		return "", &usageError{cmd + ": give --patient Patient/ID"}
	}
	return id, nil
}

// errNoPatient means the record named is not one carefront can read.
var errNoPatient = errors.New("not a patient record carefront can read")

// readPatient reads the Patient with id as the operator, from the clinical
// source serve uses (the embedded store or the EHR), audited. A missing
// record is errNoPatient; each command says it in its own words.
func readPatient(ctx context.Context, cfg config.Config, db *sqldb.DB, aw *audit.Writer, id string) (*fhir.Resource, error) {
	return readRecord(ctx, cfg, db, aw, "Patient", id)
}

// readRecord reads one resource as the operator, as readPatient does.
func readRecord(ctx context.Context, cfg config.Config, db *sqldb.DB, aw *audit.Writer, typ, id string) (*fhir.Resource, error) {
	source, _, err := clinicalSource(cfg, store.New(db)) // reads only
	if err != nil {
		return nil, err
	}
	r, err := (&clinical.Gateway{Source: source, Audit: aw}).Read(ctx, operator, typ, id)
	if apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Gone {
		return nil, errNoPatient
	}
	if err != nil {
		return nil, cliError(err)
	}
	return r, nil
}
