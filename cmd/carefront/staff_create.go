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
	"carefront/internal/fhir"
	"carefront/internal/identity"
)

func runStaffCreate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var email, role, name, practitioner string
	cfg, _, err := parseFlags("staff create", "Creates a staff account and prints a one-time setup link, valid 72 hours. The\nstaff member chooses a password there and must then add an authenticator app;\nstaff sessions end after 10 minutes without activity. A clinician linked to\ntheir Practitioner record reads the records of patients they have a care\nrelationship with; other roles see no clinical data.\n\nUsage: carefront staff create --email E --role clinician|support|security-officer|admin --name \"NAME\" [--practitioner Practitioner/ID]", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&email, "email", "", "the staff member's work email")
			fs.StringVar(&role, "role", "", "clinician, support, security-officer or admin")
			fs.StringVar(&name, "name", "", "the name patients see in their access log")
			fs.StringVar(&practitioner, "practitioner", "", "a clinician's own Practitioner record, as Practitioner/ID")
		})
	if err != nil {
		return err
	}
	if email == "" || role == "" || strings.TrimSpace(name) == "" {
		return &usageError{"staff create: give --email, --role and --name"}
	}
	var practitionerID string
	if practitioner != "" {
		typ, id, ok := strings.Cut(practitioner, "/")
		if !ok || typ != "Practitioner" || !fhir.ValidID(id) {
			return &usageError{"staff create: give --practitioner as Practitioner/ID"}
		}
		practitionerID = id
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if practitionerID != "" {
		if _, err := readRecord(ctx, cfg, db, aw, "Practitioner", practitionerID); err != nil {
			aw.Close(ctx)
			if errors.Is(err, errNoPatient) {
				return &usageError{fmt.Sprintf("staff create: %s is not a record carefront can read", practitioner)}
			}
			return err
		}
	}
	k, err := keys(cfg)
	if err != nil {
		aw.Close(ctx)
		return err
	}
	a, code, expires, err := identity.NewStore(db, k).CreateStaff(ctx, identity.NewStaff{Email: email, Role: role, Name: name, PractitionerID: practitionerID})
	if err != nil {
		aw.Close(ctx)
		return cliError(err)
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeAccountInvite},
		Action: audit.Create, Outcome: audit.Success, Client: "carefront-cli", Entities: []audit.Entity{{What: "Person/" + a.ID}}}
	if err := finishAudit(ctx, aw, rec); err != nil {
		return err
	}
	base := cfg.BaseURL
	if base == "" {
		base = "http://" + cfg.Addr
	}
	link := strings.TrimSuffix(base, "/") + "/staff/setup?" + url.Values{"code": {code}}.Encode()
	fmt.Fprintf(stdout, "staff account %s (%s) created\nsetup link: %s\nvalid until %s; it works once.\n", a.Email, role, link, expires.Format("2006-01-02 15:04 MST"))
	return nil
}
