package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"carefront/internal/audit"
	"carefront/internal/seal"
)

func runKeysRotate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, err := parseFlags("keys rotate", "Adds a new AES-256-GCM key to the encryption keyset and makes it primary.\nOld keys stay, so stored data remains readable; running instances re-encrypt\nit with the new key in the background after they restart with the new keyset.\nWith CAREFRONT_KEYSET set, the new keyset is printed for you to store;\notherwise keyset.json in the data dir is rewritten.", args, getenv, stdout, nil)
	if err != nil {
		return err
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
