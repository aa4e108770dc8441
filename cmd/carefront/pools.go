package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"carefront/internal/apperr"
	"carefront/internal/messaging"
)

func runPoolsAdd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var name, response, practitioner string
	cfg, _, err := parseFlags("pools add", "Adds a pool of staff who answer patients' messages together, such as \"Dr.\nRivera's team\", \"Billing\" or \"Prescriptions\". Patients are told to expect an\nanswer within the response time. A pool with --practitioner is offered to\nthat clinician's patients; one without, to every patient. A pool is offered\nonce someone answers it (carefront pools add-member).\n\nUsage: carefront pools add --name N --response-time 2d [--practitioner Practitioner/ID]", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "the pool's name, as patients see it")
			fs.StringVar(&response, "response-time", "", "how soon patients can expect an answer: days, hours or minutes, like 2d, 36h or 90m")
			fs.StringVar(&practitioner, "practitioner", "", "the clinician whose patients are offered the pool, as Practitioner/ID")
		})
	if err != nil {
		return err
	}
	d, err := messaging.ParseResponseTime(response)
	if err != nil {
		return &usageError{"pools add: --response-time: " + apperr.MessageOf(err)}
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := (&messaging.Store{DB: db, Audit: aw}).AddPool(ctx, messaging.NewPool{Name: name, ResponseTime: d, Practitioner: practitioner})
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if c := apperr.CodeOf(err); c == apperr.Invalid || c == apperr.Conflict {
		return &usageError{"pools add: " + apperr.MessageOf(err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pool id: %s\n", p.ID)
	return nil
}

func runPoolsAddMember(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var staff string
	cfg, fs, err := parseFlagsArgs("pools add-member", "Makes a clinician or support staff member answer a pool's messages: the\npool's threads appear in their inbox, and they are told of new messages.\n\nUsage: carefront pools add-member POOL --staff EMAIL   (POOL: the pool's id or name)", 1, args, getenv, stdout,
		func(fs *flag.FlagSet) { fs.StringVar(&staff, "staff", "", "the staff member's account email") })
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	err = (&messaging.Store{DB: db, Audit: aw}).AddMember(ctx, fs.Arg(0), staff, "")
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if apperr.CodeOf(err) == apperr.Invalid {
		return &usageError{"pools add-member: " + apperr.MessageOf(err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s answers %s\n", staff, fs.Arg(0))
	return nil
}

func runPoolsList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, err := parseFlags("pools list", "Lists the messaging pools: id, name, response time, clinician, members.\n\nUsage: carefront pools list", args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	defer aw.Close(ctx)
	ps, err := (&messaging.Store{DB: db, Audit: aw}).Pools(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(stdout, "no pools yet: add one with carefront pools add")
	}
	for _, p := range ps {
		who := "every patient"
		if p.Practitioner != "" {
			who = "patients of Practitioner/" + p.Practitioner
		}
		state := ""
		if p.Disabled {
			state = "\tdisabled"
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%d members%s\n", p.ID, p.Name, messaging.ResponseText(p.ResponseTime), who, p.Members, state)
	}
	return nil
}
