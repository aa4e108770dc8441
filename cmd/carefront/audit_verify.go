package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"carefront/internal/audit"
)

// verifyFailed ends the process with status 1 after the report is printed.
type verifyFailed struct{ err error }

func (e *verifyFailed) Error() string { return "audit verify FAILED: " + e.err.Error() }
func (e *verifyFailed) Unwrap() error { return e.err }

// publicKeys is a repeatable flag of base64 Ed25519 public keys.
type publicKeys []ed25519.PublicKey

func (p *publicKeys) String() string { return "" }

func (p *publicKeys) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return errors.New("must be a base64 32-byte Ed25519 public key")
		}
		*p = append(*p, b)
	}
	return nil
}

func runAuditVerify(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var pubs publicKeys
	var witness string
	cfg, _, err := parseFlags("audit verify", `Walks the whole audit trail: recomputes every hash, checks every record's MAC
(with the signing keys), every signed checkpoint, that no record older than the
checkpoint interval is unsigned, and, with --witness, that every checkpoint
exported there is still in the database. Exits 1 naming the first record that
was altered, removed, inserted or reordered.`, args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.Var(&pubs, "public-key", "base64 Ed25519 public key to verify with, for auditors without the signing keys (repeat, or separate by commas, for every published key)")
			fs.StringVar(&witness, "witness", "", "witness file made by carefront audit witness export: fail when the database lacks any checkpoint in it")
		})
	if err != nil {
		return err
	}
	var o audit.VerifyOptions
	if len(pubs) > 0 {
		o.Keys = pubs
	} else {
		keys, err := auditKeys(cfg, false)
		if err != nil {
			return err
		}
		o = keys.Trust()
	}
	o.Interval = cfg.AuditCheckpointInterval
	if witness != "" {
		f, err := os.Open(witness)
		if err != nil {
			return &usageError{fmt.Sprintf("audit verify: --witness: %v", err)}
		}
		o.Witness, err = audit.ReadWitness(f)
		f.Close()
		if err != nil {
			return &usageError{fmt.Sprintf("audit verify: --witness %s: %v", witness, err)}
		}
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ready(ctx); err != nil {
		return fmt.Errorf("audit verify: database not ready (%v); run carefront migrate", err)
	}
	rep, err := audit.Verify(ctx, db, o)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(stdout, "checked %d records before the failure\n", rep.Records)
			return &verifyFailed{err}
		}
		return err
	}
	ids := make([]string, len(o.Keys))
	for i, k := range o.Keys {
		ids[i] = audit.KeyID(k)
	}
	fmt.Fprintf(stdout, "audit trail verified: %d records, %d signed checkpoints, keys %s\n", rep.Records, rep.Checkpoints, strings.Join(ids, ", "))
	switch {
	case o.MACKeys == nil:
		fmt.Fprintln(stdout, "record MACs: not checked (public keys only); a record rewritten after the last checkpoint would go unnoticed")
	case rep.Legacy > 0:
		fmt.Fprintf(stdout, "record MACs: %d checked; %d older records have none (written before MACs), all covered by checkpoints\n", rep.MACsChecked, rep.Legacy)
	default:
		fmt.Fprintf(stdout, "record MACs: %d checked\n", rep.MACsChecked)
	}
	if rep.Unsigned > 0 {
		fmt.Fprintf(stdout, "unsigned tail: %d records, the oldest %s old (signed within %s while carefront runs)\n",
			rep.Unsigned, db.Now().Sub(rep.UnsignedSince).Round(time.Millisecond), cfg.AuditCheckpointInterval)
	} else {
		fmt.Fprintln(stdout, "unsigned tail: none")
	}
	if witness != "" {
		fmt.Fprintf(stdout, "witness: all %d checkpoints of %s are in the database\n", rep.WitnessChecked, witness)
	}
	return nil
}

func runAuditWitnessExport(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var pubs publicKeys
	cfg, fs, err := parseFlagsArgs("audit witness export", `Appends to FILE every signed audit checkpoint it does not hold yet. Keep FILE
outside the database's reach (another machine, write-once storage) and run this
often (e.g. every few minutes from cron): "carefront audit verify --witness FILE"
then fails if records were removed together with the checkpoints covering them.

Usage: carefront audit witness export [flags] FILE`, 1, args, getenv, stdout, func(fs *flag.FlagSet) {
		fs.Var(&pubs, "public-key", "base64 Ed25519 public key whose checkpoints are exported (repeatable); default: every key of the audit keyring")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"audit witness export: give one FILE"}
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ready(ctx); err != nil {
		return fmt.Errorf("audit witness export: database not ready (%v); run carefront migrate", err)
	}
	keys := []ed25519.PublicKey(pubs)
	if len(keys) == 0 {
		ring, err := auditKeys(cfg, false)
		if err != nil {
			return err
		}
		keys = ring.Trust().Keys
	}
	n, err := audit.ExportWitness(ctx, db, fs.Arg(0), keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d new checkpoints appended to %s\n", n, fs.Arg(0))
	return nil
}
