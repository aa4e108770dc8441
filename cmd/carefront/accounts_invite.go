package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"carefront/internal/audit"
	"carefront/internal/identity"
)

func runAccountsInvite(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var patient string
	cfg, _, err := parseFlags("accounts invite", "Prints a one-time activation code and link for a patient's record, valid 14 days.\nThe person activates their account with the code, their date of birth and\ntheir last name, then chooses an email, a password and a second factor.\n\nUsage: carefront accounts invite --patient Patient/ID", args, getenv, stdout,
		func(fs *flag.FlagSet) { fs.StringVar(&patient, "patient", "", "the patient's record, as Patient/ID") })
	if err != nil {
		return err
	}
	id, err := patientArg("accounts invite", patient)
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := readPatient(ctx, cfg, db, aw, id); err != nil {
		aw.Close(ctx)
		if errors.Is(err, errNoPatient) {
			return fmt.Errorf("accounts invite: %s is %v", patient, err)
		}
		return err
	}
	k, err := keys(cfg)
	if err != nil {
		aw.Close(ctx)
		return err
	}
	code, expires, err := identity.NewStore(db, k).Invite(ctx, id)
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeAccountInvite},
		Action: audit.Create, Outcome: audit.Success, Client: "carefront-cli", Patient: "Patient/" + id}
	switch {
	case errors.Is(err, identity.ErrPatientHasAccount):
		rec.Outcome, rec.Reason = audit.MinorFailure, "record-has-account"
	case err != nil:
		rec.Outcome = audit.SeriousFailure
	}
	if aerr := finishAudit(ctx, aw, rec); err == nil {
		err = aerr
	}
	if errors.Is(err, identity.ErrPatientHasAccount) {
		return fmt.Errorf("accounts invite: %s has a carefront account already; its owner signs in with it (Forgot your password? restores access with their second factor)", patient)
	}
	if err != nil {
		return err
	}
	base := cfg.BaseURL
	if base == "" {
		base = "http://" + cfg.Addr
	}
	link := strings.TrimSuffix(base, "/") + "/activate?" + url.Values{"code": {code}}.Encode()
	fmt.Fprintf(stdout, "activation code for %s: %s\nlink: %s\nvalid until %s; it works once.\n", patient, code, link, expires.Format("2006-01-02 15:04 MST"))
	return nil
}
