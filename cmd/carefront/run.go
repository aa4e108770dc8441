package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"carefront/internal/audit"
	"carefront/internal/config"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it the VCS revision Go records is used.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
	}
	return "dev"
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the portal (the default command)", runServe},
		{"migrate", "apply pending database migrations, or list them with --status", runMigrate},
		{"audit verify", "check the audit trail's hash chain, record MACs and signed checkpoints", runAuditVerify},
		{"audit witness export", "append new signed audit checkpoints to a witness file kept elsewhere", runAuditWitnessExport},
		{"import", "import FHIR R4 data from .json and .ndjson files and folders", runImport},
		{"fhir read", "print one resource: carefront fhir read Type/id", runFHIRRead},
		{"fhir search", "print a searchset Bundle: carefront fhir search 'Type?params'", runFHIRSearch},
		{"accounts invite", "print a one-time activation code for a patient: --patient Patient/ID", runAccountsInvite},
		{"staff create", "create a staff account and print its setup link: --email E --role R --name N [--practitioner Practitioner/ID]", runStaffCreate},
		{"proxies grant", "give a caregiver access to a patient's record: --patient Patient/ID --caregiver-email E --preset P --until YYYY-MM-DD", runProxiesGrant},
		{"proxies list", "list a patient's caregiver grants: --patient Patient/ID", runProxiesList},
		{"proxies revoke", "end a caregiver grant now: carefront proxies revoke GRANT-ID", runProxiesRevoke},
		{"terms publish", "publish a version of the terms of use: --version V --es FILE-ES FILE", runTermsPublish},
		{"research add", "add a research study patients may join: --title T --description-file FILE", runResearchAdd},
		{"pools add", "add a pool of staff answering patients' messages: --name N --response-time 2d [--practitioner Practitioner/ID]", runPoolsAdd},
		{"pools add-member", "make a clinician or support staff member answer a pool: carefront pools add-member POOL --staff EMAIL", runPoolsAddMember},
		{"pools list", "list the messaging pools", runPoolsList},
		{"clients add", "register an app for SMART on FHIR: --name N --redirect-uri U [--public | --secret | --jwks-url URL | --jwks FILE] [--launch-url URL] [--origin O]", runClientsAdd},
		{"clients list", "list the registered apps", runClientsList},
		{"clients disable", "stop an app and its tokens: carefront clients disable CLIENT-ID", runClientsDisable},
		{"keys rotate", "add a new primary encryption key (or, with --audit, audit signing key)", runKeysRotate},
		{"jobs list", "list the jobs that failed every attempt: --failed", runJobsList},
		{"jobs retry", "run a failed job again: carefront jobs retry ID", runJobsRetry},
		{"version", "print the version", runVersion},
	}
}

// usageError ends the process with status 2, like a bad flag.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) ExitCode() int { return 2 }

// errHelp marks a --help that was answered; it exits 0.
var errHelp = errors.New("help shown")

// run is carefront's whole command line: args as in os.Args.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	rest := args[1:]
	if len(rest) == 0 || strings.HasPrefix(rest[0], "-") && rest[0] != "-h" && rest[0] != "--help" && rest[0] != "-help" {
		return ignoreHelp(runServe(ctx, rest, getenv, stdout))
	}
	switch rest[0] {
	case "-h", "--help", "-help", "help":
		printUsage(stdout)
		return nil
	}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(rest) >= len(words) && strings.Join(rest[:len(words)], " ") == c.name {
			return ignoreHelp(c.run(ctx, rest[len(words):], getenv, stdout))
		}
	}
	printUsage(stdout)
	return &usageError{fmt.Sprintf("unknown command %q; see carefront --help", strings.Join(rest, " "))}
}

func ignoreHelp(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `carefront is a patient portal on FHIR R4, in one binary.

Usage:
  carefront [command] [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every setting is a flag and a CAREFRONT_* environment variable; see
"carefront serve --help". Run "carefront COMMAND --help" for a command's flags.
`)
}

// parseFlags parses a command's flags, including every config setting, and
// loads the Config. --help prints the flags and returns errHelp.
func parseFlags(name, synopsis string, args []string, getenv func(string) string, stdout io.Writer, extra func(*flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	return parseFlagsArgs(name, synopsis, 0, args, getenv, stdout, extra)
}

// parseFlagsArgs is parseFlags for a command that takes at least minArgs
// arguments after its flags (fs.Args()); minArgs 0 admits none.
func parseFlagsArgs(name, synopsis string, minArgs int, args []string, getenv func(string) string, stdout io.Writer, extra func(*flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	loader := config.Register(fs)
	if extra != nil {
		extra(fs)
	}
	// Flags may come after the arguments too (carefront pools add-member
	// POOL --staff EMAIL); everything after "--" is an argument.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "Usage: carefront %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return config.Config{}, nil, errHelp
			}
			return config.Config{}, nil, &usageError{fmt.Sprintf("%s: %v", name, err)}
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if i := len(rest) - len(left) - 1; i >= 0 && rest[i] == "--" {
			positional = append(positional, left...)
			break
		}
		positional, rest = append(positional, left[0]), left[1:]
	}
	fs.Parse(append([]string{"--"}, positional...)) //nolint:errcheck // arguments only
	if minArgs == 0 && fs.NArg() > 0 {
		return config.Config{}, nil, &usageError{fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(0))}
	}
	if fs.NArg() < minArgs {
		return config.Config{}, nil, &usageError{fmt.Sprintf("%s: missing argument; see carefront %s --help", name, name)}
	}
	cfg, err := loader.Load(getenv)
	return cfg, fs, err
}

// openDB opens the configured database. For SQLite it creates the data dir.
func openDB(ctx context.Context, cfg config.Config) (*sqldb.DB, error) {
	return sqldb.Open(ctx, sqldb.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, Durable: cfg.DurableCommits})
}

// signingKeyFile is the audit keyring in the data dir, used when
// CAREFRONT_AUDIT_SIGNING_KEY is not set.
func signingKeyFile(cfg config.Config) string { return filepath.Join(cfg.DataDir, "audit-signing.key") }

// auditKeys returns the audit keyring from configuration, or from the data
// dir, creating it there on first start when create is set.
func auditKeys(cfg config.Config, create bool) (*audit.Keyring, error) {
	if cfg.AuditSigningKey != "" {
		return audit.ParseKeyring(cfg.AuditSigningKey)
	}
	path := signingKeyFile(cfg)
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no audit signing key: %s not found and CAREFRONT_AUDIT_SIGNING_KEY not set", path)
		}
	}
	if err := sqldb.EnsureWritableDir(cfg.DataDir); err != nil {
		return nil, err
	}
	return audit.LoadOrCreateKeyring(path)
}

// keys returns the encryption keyset from configuration, or from the data
// dir, creating it there on first start.
func keys(cfg config.Config) (*seal.Keys, error) {
	if cfg.Keyset != "" {
		return seal.Parse(cfg.Keyset)
	}
	if err := sqldb.EnsureWritableDir(cfg.DataDir); err != nil {
		return nil, err
	}
	return seal.LoadOrCreate(filepath.Join(cfg.DataDir, seal.KeysetFile))
}

func runVersion(_ context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintln(stdout, "Usage: carefront version\n\nPrints the version.")
			return nil
		}
		return &usageError{"version takes no arguments"}
	}
	fmt.Fprintln(stdout, "carefront", buildVersion())
	return nil
}
