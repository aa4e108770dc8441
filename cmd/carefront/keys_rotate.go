package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"carefront/internal/audit"
	"carefront/internal/config"
	"carefront/internal/oauth"
	"carefront/internal/seal"
)

func runKeysRotate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var auditKey, tokenKey bool
	cfg, _, err := parseFlags("keys rotate", "Adds a new AES-256-GCM key to the encryption keyset and makes it primary.\nOld keys stay, so stored data remains readable; running instances re-encrypt\nit with the new key in the background after they restart with the new keyset.\nWith CAREFRONT_KEYSET set, the new keyset is printed for you to store;\notherwise keyset.json in the data dir is rewritten.\n\nWith --audit, adds a new audit signing key instead: it signs checkpoints and\nrecord MACs from the next start; older keys stay in the keyring so that what\nthey signed still verifies. Publish the new public key to your auditors.\n\nWith --tokens, makes a new key for signing the ID tokens apps get: it is\npublished in the JWKS at once and signs two minutes later, and the key it\nreplaces stays published for a day, so tokens it signed still verify.", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&auditKey, "audit", false, "rotate the audit signing key instead of the encryption key")
			fs.BoolVar(&tokenKey, "tokens", false, "rotate the ID token signing key instead of the encryption key")
		})
	if err != nil {
		return err
	}
	if auditKey && tokenKey {
		return &usageError{"keys rotate: give --audit or --tokens, not both"}
	}
	if auditKey {
		return rotateAuditKey(ctx, cfg, stdout)
	}
	if tokenKey {
		return rotateTokenKey(ctx, cfg, stdout)
	}
	k, err := keys(cfg)
	if err != nil {
		return err
	}
	old := k.PrimaryKeyID()
	id, err := k.Rotate()
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.Keyset == "" {
		if err := k.Save(filepath.Join(cfg.DataDir, seal.KeysetFile)); err != nil {
			aw.Close(ctx)
			return err
		}
	}
	err = finishAudit(ctx, aw, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeKeyRotation},
		Action: audit.Update, Outcome: audit.Success, Client: "carefront-cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new primary key %d (was %d); the keyset now holds %d keys\n", id, old, k.KeyCount())
	if cfg.Keyset != "" {
		js, err := k.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, "store this keyset as CAREFRONT_KEYSET (it is secret):")
		fmt.Fprintln(stdout, js)
	} else {
		fmt.Fprintf(stdout, "wrote %s; restart carefront to encrypt with the new key\n", filepath.Join(cfg.DataDir, seal.KeysetFile))
	}
	return nil
}

// rotateTokenKey makes a new ID token signing key and audits it.
func rotateTokenKey(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	k, err := keys(cfg)
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := (&oauth.Keys{DB: db, Seal: k}).Rotate(ctx)
	if err != nil {
		aw.Close(ctx)
		return err
	}
	err = finishAudit(ctx, aw, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeKeyRotation},
		Action: audit.Update, Outcome: audit.Success, Reason: "token-signing-key", Client: "carefront-cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new ID token signing key %s: published now, signing in two minutes; the key it replaces stays published for a day\n", id)
	return nil
}

// rotateAuditKey adds a new audit signing key to the keyring and audits the
// rotation (signed by the key it replaces).
func rotateAuditKey(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	keys, err := auditKeys(cfg, false)
	if err != nil {
		return err
	}
	old := keys.Primary().KeyID
	s, err := keys.Rotate()
	if err != nil {
		return err
	}
	db, aw, err := openWithAudit(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.AuditSigningKey == "" {
		if err := audit.SaveKeyring(signingKeyFile(cfg), keys); err != nil {
			aw.Close(ctx)
			return err
		}
	}
	err = finishAudit(ctx, aw, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeKeyRotation},
		Action: audit.Update, Outcome: audit.Success, Client: "carefront-cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new audit signing key %s (was %s); the keyring now holds %d keys\n", s.KeyID, old, len(keys.Signers))
	fmt.Fprintf(stdout, "public key to give your auditors (audit verify --public-key): %s\n", base64.StdEncoding.EncodeToString(s.Public()))
	if cfg.AuditSigningKey != "" {
		fmt.Fprintln(stdout, "store this keyring as CAREFRONT_AUDIT_SIGNING_KEY (it is secret; oldest first):")
		fmt.Fprint(stdout, keys.Encode())
	} else {
		fmt.Fprintf(stdout, "wrote %s; restart carefront to sign with the new key\n", signingKeyFile(cfg))
	}
	return nil
}
