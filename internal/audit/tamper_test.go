package audit_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carefront/internal/audit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func checkpointKinds(t *testing.T, db *sqldb.DB) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	rows, err := db.RawWriter().Query("SELECT seq, kind FROM audit_checkpoint ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var kind string
		rows.Scan(&seq, &kind)
		out[seq] = kind
	}
	return out
}

// Removing records together with the checkpoints that cover them is found
// with a witness file kept outside the database.
func TestWitnessDetectsTruncationPastCheckpoints(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		w, s := newWriter(t, db, 4)
		appendN(t, w, 10)
		w.Close(ctx)
		path := filepath.Join(t.TempDir(), "witness.jsonl")
		if n, err := audit.ExportWitness(ctx, db, path, s.Trust().Keys); err != nil || n != 3 {
			t.Fatalf("ExportWitness = %d, %v; want the checkpoints at 4, 8 and 10", n, err)
		}
		if n, err := audit.ExportWitness(ctx, db, path, s.Trust().Keys); err != nil || n != 0 {
			t.Fatalf("ExportWitness again = %d, %v; want nothing new", n, err)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
			t.Errorf("witness file mode %04o, want 0600", info.Mode().Perm())
		}
		f, _ := os.Open(path)
		witness, err := audit.ReadWitness(f)
		f.Close()
		if err != nil || len(witness) != 3 {
			t.Fatalf("ReadWitness = %d entries, %v", len(witness), err)
		}
		o := s.Trust()
		o.Witness = witness
		if rep, err := audit.Verify(ctx, db, o); err != nil || rep.WitnessChecked != 3 {
			t.Fatalf("Verify with the witness = %+v, %v", rep, err)
		}
		// The administrator removes records 9 and 10 and the checkpoint at
		// 10, so what is left is fully signed and looks whole.
		dropGuards(t, db)
		exec(t, db, "DELETE FROM audit_event WHERE seq >= 9")
		exec(t, db, "DELETE FROM audit_checkpoint WHERE seq = 10")
		if _, err := audit.Verify(ctx, db, s.Trust()); err != nil {
			t.Fatalf("without the witness the truncation is not visible: %v (the test assumes it is not)", err)
		}
		_, err = audit.Verify(ctx, db, o)
		var ve *audit.VerifyError
		if !errors.As(err, &ve) || ve.Seq != 10 || !strings.Contains(ve.Problem, "witness holds a signed checkpoint here that the database lacks") {
			t.Errorf("Verify with the witness after truncation = %v, want record 10 named", err)
		}
		// A damaged witness line is reported as such, not as tampering.
		witness[0].Signature[0] ^= 1
		if _, err := audit.Verify(ctx, db, o); err == nil || !strings.Contains(err.Error(), "witness line 1 is not signed") {
			t.Errorf("Verify with a damaged witness = %v", err)
		}
	})
}

// A writer signs by time as well as by count, and a writer that starts
// after a crash signs the tail the crash left unsigned as a recovery
// checkpoint.
func TestCheckpointsByTimeAndRecovery(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, _ := audit.NewSigner(testSeed)
		// A writer that dies: nothing signs its records (no count reached,
		// an interval longer than the test, never closed).
		crashed := audit.NewWriter(db, audit.Options{Signer: s, Observer: "test", CheckpointEvery: 1000, CheckpointInterval: time.Hour})
		appendN(t, crashed, 3)
		o := s.Trust()
		o.Interval, o.Now = time.Second, time.Now().Add(time.Minute)
		rep, err := audit.Verify(ctx, db, o)
		if !strings.Contains(errString(err), "no signed checkpoint") || rep.Unsigned != 3 {
			t.Fatalf("Verify of an unsigned tail a minute on = %+v, %v; want it refused, 3 unsigned", rep, err)
		}
		o.Now = time.Now()
		if rep, err := audit.Verify(ctx, db, o); err != nil || rep.Unsigned != 3 || rep.UnsignedSince.IsZero() {
			t.Fatalf("Verify of a fresh unsigned tail = %+v, %v; want it reported, not refused", rep, err)
		}
		// The next start signs it as a recovery checkpoint.
		w := audit.NewWriter(db, audit.Options{Signer: s, Observer: "test", CheckpointEvery: 1000, CheckpointInterval: 200 * time.Millisecond})
		defer w.Close(ctx)
		deadline := time.Now().Add(5 * time.Second)
		for checkpointKinds(t, db)[3] != audit.KindRecovery && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if k := checkpointKinds(t, db); k[3] != audit.KindRecovery {
			t.Fatalf("checkpoints = %v, want a recovery checkpoint at 3", k)
		}
		// A record written now is signed within the interval.
		if err := w.Append(ctx, read(4)); err != nil {
			t.Fatal(err)
		}
		for checkpointKinds(t, db)[4] == "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if k := checkpointKinds(t, db); k[4] != audit.KindTime {
			t.Errorf("checkpoints = %v, want a time checkpoint at 4", k)
		}
		crashed.Close(ctx)
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// After a rotation the new key signs; what the old one signed still
// verifies with the whole keyring, and not with the new key alone.
func TestKeyRotationKeepsOldCheckpointsVerifiable(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		path := filepath.Join(sqldbtest.DataDir(t), "audit-signing.key")
		ring, err := audit.LoadOrCreateKeyring(path)
		if err != nil {
			t.Fatal(err)
		}
		w := audit.NewWriter(db, audit.Options{Signer: ring.Primary(), Observer: "test"})
		appendN(t, w, 3)
		w.Close(ctx)
		old := ring.Primary().KeyID
		if _, err := ring.Rotate(); err != nil {
			t.Fatal(err)
		}
		if err := audit.SaveKeyring(path, ring); err != nil {
			t.Fatal(err)
		}
		ring, err = audit.LoadOrCreateKeyring(path)
		if err != nil || len(ring.Signers) != 2 || ring.Signers[0].KeyID != old {
			t.Fatalf("reloaded keyring: %v, %v", ring, err)
		}
		w = audit.NewWriter(db, audit.Options{Signer: ring.Primary(), Observer: "test"})
		appendN(t, w, 2)
		w.Close(ctx)
		rep, err := audit.Verify(ctx, db, ring.Trust())
		if err != nil || rep.Records != 5 || rep.Checkpoints != 2 || rep.MACsChecked != 5 {
			t.Fatalf("Verify with the keyring = %+v, %v", rep, err)
		}
		_, err = audit.Verify(ctx, db, audit.VerifyOptions{Keys: []ed25519.PublicKey{ring.Primary().Public()}})
		if err == nil || !strings.Contains(err.Error(), "unknown key "+old) {
			t.Errorf("Verify with the new key alone = %v, want the old key's checkpoint refused", err)
		}
	})
}

// A row put in the staging table by hand (to have the writer chain and
// sign a made-up record) is not chained: it is dropped, and a Security
// Alert record says so.
func TestForgedStagedRecordIsRefused(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		w, s := newWriter(t, db, 1000)
		var staged []byte
		err := db.Write(ctx, func(tx *sqldb.Tx) error {
			if err := w.Stage(ctx, tx, read(1)); err != nil {
				return err
			}
			return tx.QueryRow(ctx, "SELECT event FROM audit_staged ORDER BY id DESC LIMIT 1").Scan(&staged)
		})
		if err != nil {
			t.Fatal(err)
		}
		forged := strings.Replace(string(staged), "Observation/o1", "Observation/forged", 1)
		exec(t, db, "INSERT INTO audit_staged (event, mac, mac_key) VALUES (?, ?, ?)", []byte(forged), []byte("not a mac"), s.KeyID)
		exec(t, db, "INSERT INTO audit_staged (event, mac, mac_key) VALUES (?, ?, ?)", []byte("{not json"), []byte("x"), "feedfacefeedface")
		if err := w.Chain(ctx); err != nil {
			t.Fatalf("Chain = %v: a forged row must not stop the chain", err)
		}
		w.Close(ctx)
		if _, err := audit.Verify(ctx, db, s.Trust()); err != nil {
			t.Fatal(err)
		}
		var all []string
		for seq := 1; seq <= 3; seq++ {
			all = append(all, eventOf(t, db, seq))
		}
		joined := strings.Join(all, "\n")
		if strings.Contains(joined, "forged") || !strings.Contains(joined, "Observation/o1") || strings.Count(joined, "staged-record-refused") != 2 {
			t.Errorf("chain after forged staged rows:\n%s", joined)
		}
		if n := count(t, db, "audit_staged"); n != 0 {
			t.Errorf("%d rows left staged", n)
		}
	})
}

// Records removed from the end by hand: the running writer refuses to sign
// new ones over the gap (which would make the chain look whole again).
func TestWriterRefusesAHeadThatWentBack(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		w, _ := newWriter(t, db, 1000)
		appendN(t, w, 5)
		dropGuards(t, db)
		exec(t, db, "DELETE FROM audit_event WHERE seq >= 4")
		err := w.Append(ctx, read(6))
		if err == nil || !strings.Contains(err.Error(), "records were removed") {
			t.Fatalf("Append after the tail was removed = %v", err)
		}
	})
}

// Witness export takes only checkpoints signed by a trusted key: a forged
// row would otherwise enter the witness and stop every later export.
func TestWitnessExportRefusesAForgedCheckpoint(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		w, s := newWriter(t, db, 2)
		appendN(t, w, 4)
		w.Close(ctx)
		dropGuards(t, db)
		exec(t, db, "INSERT INTO audit_checkpoint (seq, hash, key_id, signature, signed_at, kind) VALUES (?, ?, ?, ?, ?, ?)",
			999999, make([]byte, 32), s.KeyID, make([]byte, 64), "2026-01-01T00:00:00Z", "count")
		path := filepath.Join(t.TempDir(), "witness.jsonl")
		if n, err := audit.ExportWitness(ctx, db, path, s.Trust().Keys); err == nil || n != 0 {
			t.Fatalf("ExportWitness with a forged row = %d, %v; want refused", n, err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("a witness file was written")
		}
	})
}
