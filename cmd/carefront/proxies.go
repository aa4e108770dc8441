package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/consent"
	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/views"
)

func runProxiesGrant(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var patient, email, preset, until, never string
	cfg, _, err := parseFlags("proxies grant", "Gives a parent, guardian or other caregiver access to a patient's record,\nas the clinic has established it, until the end of a day in the clinic's\ntime zone (--clinic-time-zone). Access also ends when the patient comes of\nage (--adult-age, 18). --never lists kinds of records never shown to the\ncaregiver, whatever else the grant covers.\n\nUsage: carefront proxies grant --patient Patient/ID --caregiver-email E --preset full|medications-visits --until YYYY-MM-DD [--never mental-health,substance-use,hiv,sexual-health]", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&patient, "patient", "", "the patient's record, as Patient/ID")
			fs.StringVar(&email, "caregiver-email", "", "the caregiver's email address")
			fs.StringVar(&preset, "preset", "full", "what the caregiver sees: full, or medications-visits")
			fs.StringVar(&until, "until", "", "the last day of access, YYYY-MM-DD")
			fs.StringVar(&never, "never", "", "kinds never shown to the caregiver, comma-separated: "+strings.Join(consent.NeverNames, ", "))
		})
	if err != nil {
		return err
	}
	id, err := patientArg("proxies grant", patient)
	if err != nil {
		return err
	}
	var neverKinds []string
	for _, k := range strings.Split(never, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if !slices.Contains(consent.NeverNames, k) {
			return &usageError{fmt.Sprintf("proxies grant: --never %q is not one of %s", k, strings.Join(consent.NeverNames, ", "))}
		}
		neverKinds = append(neverKinds, k)
	}
	loc := cfg.ClinicTimeZone
	if loc == nil {
		loc = time.UTC
	}
	day, err := time.ParseInLocation("2006-01-02", until, loc)
	if err != nil {
		return &usageError{"proxies grant: give --until as the last day of access, YYYY-MM-DD"}
	}
	end := day.AddDate(0, 0, 1) // access ends at the end of that day
	db, aw, st, err := openWithStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	rec, err := readPatient(ctx, cfg, db, aw, id)
	if err != nil {
		aw.Close(ctx)
		if errors.Is(err, errNoPatient) {
			return &usageError{fmt.Sprintf("proxies grant: %s is %v", patient, err)}
		}
		return err
	}
	name, birth := views.PatientFacts(rec)
	// An address with no account is invited: the mail goes out through
	// the job queue, sent by the running carefront.
	k, err := keys(cfg)
	if err != nil {
		aw.Close(ctx)
		return err
	}
	queue, err := jobs.New(db, jobs.Options{})
	if err != nil {
		aw.Close(ctx)
		return err
	}
	base := cfg.BaseURL
	if base == "" {
		base = "http://" + cfg.Addr
	}
	grants := &consent.Grants{DB: db, Audit: aw, Mail: &identity.Auth{Keys: k, Jobs: queue}, AcceptURL: base + "/caregiver/accept?code=", Store: st,
		Ages: agePolicy(cfg)}
	g, err := grants.Grant(ctx, consent.NewGrant{Patient: id, Email: email, Preset: preset, Until: end, Never: neverKinds,
		PatientBirth: birth, PatientName: name, By: "carefront-cli"})
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if apperr.CodeOf(err) == apperr.Invalid {
		return &usageError{"proxies grant: " + apperr.MessageOf(err)}
	}
	if err != nil {
		return err
	}
	who := "no account yet: an invitation was emailed; the grant applies once they accept it"
	if g.Account != "" {
		who = "linked to their account"
	}
	fmt.Fprintf(stdout, "grant %s: %s may see %s's record (%s) until %s (%s)\n", g.ID, g.Email, patient, g.Preset, end.In(loc).Format("2006-01-02 15:04 MST"), who)
	return nil
}

func runProxiesList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var patient string
	cfg, _, err := parseFlags("proxies list", "Lists a patient's caregiver grants, in force and ended, newest first.\n\nUsage: carefront proxies list --patient Patient/ID", args, getenv, stdout,
		func(fs *flag.FlagSet) { fs.StringVar(&patient, "patient", "", "the patient's record, as Patient/ID") })
	if err != nil {
		return err
	}
	id, err := patientArg("proxies list", patient)
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	defer aw.Close(ctx)
	gs, err := (&consent.Grants{DB: db, Audit: aw, Ages: agePolicy(cfg)}).List(ctx, id)
	if err != nil {
		return err
	}
	now := db.Now()
	for _, g := range gs {
		state := "in force"
		switch {
		case !g.Revoked.IsZero():
			state = "revoked " + g.Revoked.Format("2006-01-02")
		case !g.Active(now):
			state = "ended"
		}
		until := "until " + g.End().Format("2006-01-02 15:04 MST")
		if g.End().Before(g.Until) {
			until += " (the patient comes of age)"
		}
		what := g.Preset
		for _, name := range consent.NeverNames {
			if slices.Contains(g.DenyLabels, consent.NeverKinds[name]) {
				what += ", never " + name
			}
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", g.ID, g.Email, what, until, state)
	}
	if len(gs) == 0 {
		fmt.Fprintf(stdout, "no caregiver grants for %s\n", patient)
	}
	return nil
}

func runProxiesRevoke(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, fs, err := parseFlagsArgs("proxies revoke", "Ends a caregiver grant now: the caregiver's next request no longer has the\naccess, on every carefront instance.\n\nUsage: carefront proxies revoke GRANT-ID", 1, args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	db, aw, st, err := openWithStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	g, err := (&consent.Grants{DB: db, Audit: aw, Store: st, Ages: agePolicy(cfg)}).Revoke(ctx, consent.Revocation{ID: fs.Arg(0), By: "carefront-cli"})
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if errors.Is(err, consent.ErrNoGrant) {
		return &usageError{fmt.Sprintf("proxies revoke: no grant in force has the id %q", fs.Arg(0))}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "grant %s revoked for Patient/%s\n", g.ID, g.Patient)
	return nil
}
