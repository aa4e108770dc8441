package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"carefront/internal/sqldb"
)

// WitnessEntry is one signed checkpoint as kept in a witness file: a copy
// of the checkpoints held outside the database (another machine, write-once
// storage), so that removing records together with the checkpoints that
// cover them is still detected.
type WitnessEntry struct {
	Seq       int64  `json:"seq"`
	Hash      []byte `json:"hash"`
	KeyID     string `json:"key_id"`
	Signature []byte `json:"signature"`
	SignedAt  string `json:"signed_at"`
}

// ReadWitness reads a witness file: one JSON object a line, in the order
// the checkpoints were exported.
func ReadWitness(r io.Reader) ([]WitnessEntry, error) {
	var out []WitnessEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e WitnessEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq < 1 || len(e.Hash) == 0 || len(e.Signature) == 0 {
			return nil, fmt.Errorf("witness line %d is not a checkpoint", line)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ExportWitness appends to the file at path every signed checkpoint newer
// than the last one it holds (creating it, mode 0600), syncs it, and
// returns how many were added. Each must be signed by one of keys and
// cover a record the chain has; otherwise nothing is appended (a forged
// row would otherwise spoil the witness for good).
func ExportWitness(ctx context.Context, db *sqldb.DB, path string, keys []ed25519.PublicKey) (int, error) {
	var last int64
	if f, err := os.Open(path); err == nil {
		have, err := ReadWitness(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		for _, e := range have {
			last = max(last, e.Seq)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	trusted := map[string]ed25519.PublicKey{}
	for _, k := range keys {
		trusted[KeyID(k)] = k
	}
	var add []WitnessEntry
	var head int64
	err := db.Read(ctx, func(tx *sqldb.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_event").Scan(&head); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT seq, hash, key_id, signature, signed_at FROM audit_checkpoint WHERE seq > ? ORDER BY seq", last)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e WitnessEntry
			if err := rows.Scan(&e.Seq, &e.Hash, &e.KeyID, &e.Signature, &e.SignedAt); err != nil {
				return err
			}
			pub, ok := trusted[e.KeyID]
			if !ok || e.Seq > head || !ed25519.Verify(pub, checkpointMessage(e.Seq, e.Hash, e.SignedAt), e.Signature) {
				return &VerifyError{e.Seq, "the database's checkpoint here is not signed by a trusted key, or covers a record the chain lacks; nothing was exported (run carefront audit verify)"}
			}
			add = append(add, e)
		}
		return rows.Err()
	})
	if err != nil || len(add) == 0 {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	enc := json.NewEncoder(f)
	for _, e := range add {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return len(add), f.Close()
}
