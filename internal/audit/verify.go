package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"database/sql"
	"fmt"
	"time"

	"carefront/internal/sqldb"
)

// VerifyOptions say what Verify trusts and how strict it is.
type VerifyOptions struct {
	// Keys are the public keys whose checkpoints are accepted: every key
	// the operator has published (a rotation adds one). A checkpoint by any
	// other key fails verification.
	Keys []ed25519.PublicKey
	// MACKeys, by key id, check each record's MAC. Only the holder of the
	// signing keys has them (Keyring.Trust); an auditor with public keys
	// alone verifies without, and a record rewritten after the last
	// checkpoint then goes unnoticed unless a witness covers it.
	MACKeys map[string][]byte
	// Interval, when set, fails the chain if any record older than this
	// (by Now) has no signed checkpoint after it: a running writer signs
	// within the interval, and a stopped one signs its whole chain.
	Interval time.Duration
	Now      time.Time
	// Witness holds checkpoints the operator exported and kept elsewhere
	// (ReadWitness); each must still be in the database, unchanged.
	Witness []WitnessEntry
}

// Report sums up a verified chain.
type Report struct {
	Records     int64 // records walked
	Checkpoints int   // checkpoints whose signature and hash matched
	LastSeq     int64
	// MACsChecked counts records whose MAC was checked; Legacy counts
	// records written before records had MACs (covered by checkpoints).
	MACsChecked int64
	Legacy      int64
	// Unsigned is the tail no checkpoint covers yet, and UnsignedSince the
	// time its oldest record was written (as the records say: without the
	// MAC keys, a record's time is as trustworthy as its hash).
	Unsigned      int64
	UnsignedSince time.Time
	// WitnessChecked counts witness checkpoints found in the database.
	WitnessChecked int
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
// every link, the indexed columns against the hashed record, every record's
// MAC (with MACKeys), every checkpoint's signature against the trusted
// keys, the witness, and how old the unsigned tail is. It returns a
// *VerifyError naming the first bad record when any record was altered,
// removed, inserted or reordered.
//
// What it cannot see: records removed from the tail after the last
// checkpoint (they are younger than the interval while the writer runs),
// and, without a witness, checkpoints removed together with every record
// after them.
func Verify(ctx context.Context, db *sqldb.DB, o VerifyOptions) (Report, error) {
	if o.Now.IsZero() {
		o.Now = db.Now()
	}
	trusted := map[string]ed25519.PublicKey{}
	for _, k := range o.Keys {
		trusted[KeyID(k)] = k
	}
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
		for seq := range cps {
			if seq < 1 {
				return &VerifyError{seq, "checkpoint for a record that cannot exist"}
			}
		}
		if err := checkWitness(o.Witness, cps, trusted); err != nil {
			return err
		}
		rep.WitnessChecked = len(o.Witness)

		rows, err = tx.Query(ctx, "SELECT seq, recorded, type_code, action, outcome, patient, request_id, event, prev_hash, hash, mac, mac_key FROM audit_event ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		want := int64(1)
		prev := genesis
		var firstLegacyUnsigned int64 // first record after the last checkpoint without a MAC
		for rows.Next() {
			var (
				seq                        int64
				col                        columns
				patient, requestID, macKey sql.NullString
				canonical, pv, h, mac      []byte
			)
			if err := rows.Scan(&seq, &col.Recorded, &col.TypeCode, &col.Action, &col.Outcome, &patient, &requestID, &canonical, &pv, &h, &mac, &macKey); err != nil {
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
			// With the MAC key, a record rewritten with its hashes
			// recomputed is named here, before any checkpoint.
			switch {
			case len(mac) == 0 && !macKey.Valid:
				rep.Legacy++
				if seq > maxCP && firstLegacyUnsigned == 0 {
					firstLegacyUnsigned = seq
				}
			case o.MACKeys != nil:
				k, ok := o.MACKeys[macKey.String]
				if !ok {
					return &VerifyError{seq, "its MAC is by key " + macKey.String + ", which is not one of carefront's keys (altered)"}
				}
				if !hmac.Equal(mac, recordMAC(k, seq, h)) {
					return &VerifyError{seq, "its MAC does not match (altered, its hashes recomputed)"}
				}
				rep.MACsChecked++
			}
			ev, err := parseEvent(canonical)
			if err != nil {
				return &VerifyError{seq, "its content is not a valid AuditEvent"}
			}
			if columnsOf(ev) != col {
				return &VerifyError{seq, "its indexed columns do not match the hashed record (altered)"}
			}
			if c, ok := cps[seq]; ok {
				pub, known := trusted[c.keyID]
				if !known {
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
			if seq > maxCP {
				// The oldest, not the first: a record staged with its change
				// is chained after records written later.
				if t, err := time.Parse(time.RFC3339Nano, col.Recorded); err == nil && (rep.UnsignedSince.IsZero() || t.Before(rep.UnsignedSince)) {
					rep.UnsignedSince = t
				}
				rep.Unsigned++
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
		if o.MACKeys != nil && firstLegacyUnsigned != 0 {
			return &VerifyError{firstLegacyUnsigned, "it has no MAC and no checkpoint covers it (altered)"}
		}
		if o.Interval > 0 && rep.Unsigned > 0 && o.Now.Sub(rep.UnsignedSince) > o.Interval {
			return &VerifyError{rep.LastSeq - rep.Unsigned + 1, fmt.Sprintf(
				"it and the %d records after it have no signed checkpoint, and it is %s old (more than the %s checkpoint interval): a writer stopped without signing, or checkpoints were removed",
				rep.Unsigned-1, o.Now.Sub(rep.UnsignedSince).Round(time.Second), o.Interval)}
		}
		return nil
	})
	return rep, err
}

// checkWitness finds every witness checkpoint in the database, unchanged.
func checkWitness(witness []WitnessEntry, cps map[int64]checkpointRow, trusted map[string]ed25519.PublicKey) error {
	for i, w := range witness {
		pub, ok := trusted[w.KeyID]
		if !ok || !ed25519.Verify(pub, checkpointMessage(w.Seq, w.Hash, w.SignedAt), w.Signature) {
			return &VerifyError{w.Seq, fmt.Sprintf("witness line %d is not signed by a trusted key (the witness file is damaged)", i+1)}
		}
		c, ok := cps[w.Seq]
		if !ok {
			return &VerifyError{w.Seq, "the witness holds a signed checkpoint here that the database lacks (records and checkpoints removed)"}
		}
		if !bytes.Equal(c.hash, w.Hash) || !bytes.Equal(c.sig, w.Signature) || c.signedAt != w.SignedAt {
			return &VerifyError{w.Seq, "the database's checkpoint differs from the witness (checkpoint replaced)"}
		}
	}
	return nil
}
