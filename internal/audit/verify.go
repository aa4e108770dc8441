package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"

	"carefront/internal/sqldb"
)

// Report sums up a verified chain.
type Report struct {
	Records     int64 // records walked
	Checkpoints int   // checkpoints whose signature and hash matched
	LastSeq     int64
}

// VerifyError names the first record (or checkpoint) found bad.
type VerifyError struct {
	Seq     int64
	Problem string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit record %d: %s", e.Seq, e.Problem)
}

type checkpointRow struct {
	hash, sig       []byte
	keyID, signedAt string
}

// Verify walks the whole chain in order, recomputing every hash, checking
// every link, the indexed columns against the hashed record, and every
// checkpoint's signature against pub. It returns a *VerifyError naming the
// first bad record when any record was altered, removed, inserted or
// reordered. Records removed from the tail after the last checkpoint cannot
// be told from records never written; the head row and frequent checkpoints
// narrow that window.
func Verify(ctx context.Context, db *sqldb.DB, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	err := db.Read(ctx, func(tx *sqldb.Tx) error {
		cps := map[int64]checkpointRow{}
		var maxCP int64
		rows, err := tx.Query(ctx, "SELECT seq, hash, key_id, signature, signed_at FROM audit_checkpoint ORDER BY seq")
		if err != nil {
			return err
		}
		for rows.Next() {
			var seq int64
			var c checkpointRow
			if err := rows.Scan(&seq, &c.hash, &c.keyID, &c.sig, &c.signedAt); err != nil {
				rows.Close()
				return err
			}
			cps[seq] = c
			maxCP = max(maxCP, seq)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		keyID := KeyID(pub)

		rows, err = tx.Query(ctx, "SELECT seq, recorded, type_code, action, outcome, patient, request_id, event, prev_hash, hash FROM audit_event ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		want := int64(1)
		prev := genesis
		for rows.Next() {
			var (
				seq                int64
				col                columns
				patient, requestID sql.NullString
				canonical, pv, h   []byte
			)
			if err := rows.Scan(&seq, &col.Recorded, &col.TypeCode, &col.Action, &col.Outcome, &patient, &requestID, &canonical, &pv, &h); err != nil {
				return err
			}
			col.Patient, col.RequestID = patient.String, requestID.String
			if seq != want {
				if seq > want {
					return &VerifyError{want, fmt.Sprintf("missing: the chain jumps from %d to %d (records removed)", want-1, seq)}
				}
				return &VerifyError{seq, "out of order"}
			}
			if !bytes.Equal(pv, prev) {
				return &VerifyError{seq, "its previous-hash link does not match record " + fmt.Sprint(seq-1) + " (a record before it was altered, removed, inserted or reordered)"}
			}
			sum := chainHash(prev, seq, canonical)
			if !bytes.Equal(sum, h) {
				return &VerifyError{seq, "its content does not match its hash (altered)"}
			}
			ev, err := parseEvent(canonical)
			if err != nil {
				return &VerifyError{seq, "its content is not a valid AuditEvent"}
			}
			if columnsOf(ev) != col {
				return &VerifyError{seq, "its indexed columns do not match the hashed record (altered)"}
			}
			if c, ok := cps[seq]; ok {
				if c.keyID != keyID {
					return &VerifyError{seq, "checkpoint signed by unknown key " + c.keyID}
				}
				if !bytes.Equal(c.hash, sum) {
					return &VerifyError{seq, "checkpoint hash does not match the chain (records up to here were altered)"}
				}
				if !ed25519.Verify(pub, checkpointMessage(seq, c.hash, c.signedAt), c.sig) {
					return &VerifyError{seq, "checkpoint signature is invalid"}
				}
				rep.Checkpoints++
			}
			prev = sum
			rep.Records++
			rep.LastSeq = seq
			want++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if maxCP > rep.LastSeq {
			return &VerifyError{rep.LastSeq + 1, fmt.Sprintf("missing: a signed checkpoint covers records up to %d but the chain ends at %d (records removed)", maxCP, rep.LastSeq)}
		}
		for seq := range cps {
			if seq < 1 {
				return &VerifyError{seq, "checkpoint for a record that cannot exist"}
			}
		}
		var headSeq int64
		var headHash []byte
		if err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&headSeq, &headHash); err != nil {
			return err
		}
		if headSeq != rep.LastSeq || !bytes.Equal(headHash, prev) {
			return &VerifyError{rep.LastSeq + 1, fmt.Sprintf("the chain head says %d records but %d were found (records removed or the head altered)", headSeq, rep.LastSeq)}
		}
		return nil
	})
	return rep, err
}
