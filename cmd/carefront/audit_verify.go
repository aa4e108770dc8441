package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"

	"carefront/internal/audit"
)

// verifyFailed ends the process with status 1 after the report is printed.
type verifyFailed struct{ err error }

func (e *verifyFailed) Error() string { return "audit verify FAILED: " + e.err.Error() }
func (e *verifyFailed) Unwrap() error { return e.err }

func runAuditVerify(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var pubB64 string
	cfg, _, err := parseFlags("audit verify", "Walks the whole audit trail, recomputing every hash and checking every signed\ncheckpoint. Exits 1 naming the first record that was altered, removed,\ninserted or reordered.", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.StringVar(&pubB64, "public-key", "", "base64 Ed25519 public key to verify with, for auditors without the signing key")
		})
	if err != nil {
		return err
	}
	var pub ed25519.PublicKey
	if pubB64 != "" {
		b, err := base64.StdEncoding.DecodeString(pubB64)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return &usageError{"audit verify: --public-key must be a base64 32-byte Ed25519 public key"}
		}
		pub = b
	} else {
		s, err := signer(cfg, false)
		if err != nil {
			return err
		}
		pub = s.Public()
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ready(ctx); err != nil {
		return fmt.Errorf("audit verify: database not ready (%v); run carefront migrate", err)
	}
	rep, err := audit.Verify(ctx, db, pub)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(stdout, "checked %d records before the failure\n", rep.Records)
			return &verifyFailed{err}
		}
		return err
	}
	fmt.Fprintf(stdout, "audit trail verified: %d records, %d signed checkpoints, key %s\n", rep.Records, rep.Checkpoints, audit.KeyID(pub))
	return nil
}
