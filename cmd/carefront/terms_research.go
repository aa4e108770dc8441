package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"carefront/internal/apperr"
	"carefront/internal/consent"
)

// readText reads a text file the clinic gives (terms, a study's
// description); a file that cannot be read is a usage error.
func readText(cmd, path string) (string, error) {
	if path == "" {
		return "", &usageError{cmd + ": give the file"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &usageError{fmt.Sprintf("%s: cannot read %s: %v", cmd, path, err)}
	}
	return string(b), nil
}

func runTermsPublish(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var version, spanish string
	cfg, fs, err := parseFlagsArgs("terms publish", "Publishes a version of the portal's terms of use: FILE is the English text,\n--es the Spanish. It becomes the current version at once: everyone is asked\nto accept it at their next sign-in.\n\nUsage: carefront terms publish --version V --es FILE-ES FILE", 1, args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&version, "version", "", "the version's name, e.g. 2026-12")
			fs.StringVar(&spanish, "es", "", "the Spanish text")
		})
	if err != nil {
		return err
	}
	en, err := readText("terms publish", fs.Arg(0))
	if err != nil {
		return err
	}
	es, err := readText("terms publish", spanish)
	if err != nil {
		return &usageError{"terms publish: give the Spanish text with --es FILE"}
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	err = (&consent.TermsBook{DB: db, Audit: aw}).Publish(ctx, consent.Terms{Version: version, English: en, Spanish: es}, "carefront-cli")
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if apperr.CodeOf(err) == apperr.Invalid {
		return &usageError{"terms publish: " + apperr.MessageOf(err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "terms %s published; everyone accepts them at their next sign-in\n", version)
	return nil
}

func runResearchAdd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var title, file string
	cfg, _, err := parseFlags("research add", "Adds a research study patients may join from their Sharing page (and leave\nat any time). Joining shares nothing by itself.\n\nUsage: carefront research add --title T --description-file FILE", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&title, "title", "", "the study's title")
			fs.StringVar(&file, "description-file", "", "a text file describing the study for patients")
		})
	if err != nil {
		return err
	}
	desc, err := readText("research add", file)
	if err != nil {
		return err
	}
	db, aw, st, err := openWithStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := (&consent.Research{DB: db, Audit: aw, Store: st}).Add(ctx, title, desc, "carefront-cli")
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if apperr.CodeOf(err) == apperr.Invalid {
		return &usageError{"research add: " + apperr.MessageOf(err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "study %s added: %s\n", s.ID, s.Title)
	return nil
}
