package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/oauth"
)

// repeated is a flag that may be given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func runClientsAdd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		name, jwksURL, jwksFile, launch string
		public, secret                  bool
		redirects, origins              repeated
	)
	cfg, _, err := parseFlags("clients add", "Registers an app that patients may connect to their records through SMART on\nFHIR, as reviewed by the clinic, and prints its client id (and, for an app with\na secret, the secret, once). An app is public (in a browser or on a phone: no\nsecret; the default), has a secret (--secret), or signs client assertions with\nkeys from a JWKS (--jwks FILE or --jwks-url URL; RS384 or ES384). Redirect URIs\nare matched exactly; give each one. --origin lets a browser app at that origin\ncall the token and FHIR endpoints.\n\nUsage: carefront clients add --name N --redirect-uri U [--redirect-uri U2 ...] [--public | --secret | --jwks-url URL | --jwks FILE] [--launch-url URL] [--origin O]", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "the app's name, as patients see it")
			fs.Var(&redirects, "redirect-uri", "a redirect URI of the app (repeat for more)")
			fs.BoolVar(&public, "public", false, "a public app: no secret, PKCE only (the default)")
			fs.BoolVar(&secret, "secret", false, "a confidential app with a client secret")
			fs.StringVar(&jwksURL, "jwks-url", "", "a confidential app whose public keys are at this https URL")
			fs.StringVar(&jwksFile, "jwks", "", "a confidential app whose public keys are in this JWKS file")
			fs.StringVar(&launch, "launch-url", "", "where the portal's app list launches the app with a patient")
			fs.Var(&origins, "origin", "a browser origin the app runs at, scheme://host[:port] (repeat for more)")
		})
	if err != nil {
		return err
	}
	kind, chosen := oauth.KindPublic, 0
	for _, c := range []struct {
		set  bool
		kind string
	}{{public, oauth.KindPublic}, {secret, oauth.KindSecret}, {jwksURL != "", oauth.KindJWKS}, {jwksFile != "", oauth.KindJWKS}} {
		if c.set {
			kind = c.kind
			chosen++
		}
	}
	if chosen > 1 {
		return &usageError{"clients add: give one of --public, --secret, --jwks-url and --jwks"}
	}
	n := oauth.NewClient{Name: name, Kind: kind, RedirectURIs: redirects, JWKSURL: jwksURL, LaunchURL: launch, Origins: origins,
		Reviewed: true, By: "carefront-cli"}
	if jwksFile != "" {
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return &usageError{fmt.Sprintf("clients add: cannot read --jwks: %v", err)}
		}
		n.JWKS = b
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	c, sec, err := (&oauth.Clients{DB: db, Audit: aw, Production: cfg.Production()}).Add(ctx, n)
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if apperr.CodeOf(err) == apperr.Invalid {
		return &usageError{"clients add: " + apperr.MessageOf(err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "client id: %s\n", c.ID)
	if sec != "" {
		fmt.Fprintf(stdout, "client secret: %s\n(shown this once; carefront keeps only its hash)\n", sec)
	}
	return nil
}

func runClientsList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, err := parseFlags("clients list", "Lists the registered apps: id, name, kind, whether the clinic reviewed it,\nstate, and redirect URIs.", args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	defer aw.Close(ctx)
	cs, err := (&oauth.Clients{DB: db, Audit: aw}).List(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		reviewed, state := "reviewed", "active"
		if !c.Reviewed {
			reviewed = "not reviewed"
		}
		if !c.Active() {
			state = "disabled " + c.Disabled.Format("2006-01-02")
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Kind, reviewed, state, strings.Join(c.RedirectURIs, " "))
	}
	if len(cs) == 0 {
		fmt.Fprintln(stdout, "no apps registered")
	}
	return nil
}

func runClientsDisable(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, fs, err := parseFlagsArgs("clients disable", "Stops an app: it gets no more tokens, and every token it holds stops working\nat its next use.\n\nUsage: carefront clients disable CLIENT-ID", 1, args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"clients disable: give one client id"}
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	err = (&oauth.Clients{DB: db, Audit: aw}).Disable(ctx, fs.Arg(0), "carefront-cli")
	if cerr := aw.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err == oauth.ErrUnknownClient {
		return &usageError{fmt.Sprintf("clients disable: no active app has the client id %q", clipArg(fs.Arg(0)))}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "app %s disabled; its tokens no longer work\n", fs.Arg(0))
	return nil
}

func clipArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
