package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"carefront/internal/audit"
	"carefront/internal/identity"
)

func runStaffCreate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var email, role string
	cfg, _, err := parseFlags("staff create", "Creates a staff account and prints a one-time setup link, valid 72 hours. The\nstaff member chooses a password there and must then add an authenticator app;\nstaff sessions end after 10 minutes without activity.\n\nUsage: carefront staff create --email E --role clinician|support|security-officer|admin", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&email, "email", "", "the staff member's work email")
			fs.StringVar(&role, "role", "", "clinician, support, security-officer or admin")
		})
	if err != nil {
		return err
	}
	if email == "" || role == "" {
		return &usageError{"staff create: give --email and --role"}
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	k, err := keys(cfg)
	if err != nil {
		aw.Close(ctx)
		return err
	}
	a, code, expires, err := identity.NewStore(db, k).CreateStaff(ctx, email, role)
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
