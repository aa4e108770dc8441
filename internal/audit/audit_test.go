package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/audit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/telemetry"
)

var testSeed = []byte("0123456789abcdef0123456789abcdef")

func newWriter(t *testing.T, db *sqldb.DB, every int) (*audit.Writer, *audit.Signer) {
	t.Helper()
	s, err := audit.NewSigner(testSeed)
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(db, audit.Options{Signer: s, Observer: "carefront-test", CheckpointEvery: every})
	t.Cleanup(func() { w.Close(context.Background()) })
	return w, s
}

func fixedClock(db *sqldb.DB) {
	var mu sync.Mutex
	t := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func read(n int) audit.Record {
	return audit.Record{
		Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeRead},
		Action: audit.Read, Outcome: audit.Success,
		User: "Patient/p1", Address: "203.0.113.7", Patient: "Patient/p1",
		Entities:  []audit.Entity{{What: fmt.Sprintf("Observation/o%d", n)}},
		RequestID: fmt.Sprintf("req-%d", n),
	}
}

func appendN(t *testing.T, w *audit.Writer, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := w.Append(context.Background(), read(i)); err != nil {
			t.Fatalf("Append(%d) = %v", i, err)
		}
	}
}

func TestAppendShapesBALPEvent(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fixedClock(db)
		w, _ := newWriter(t, db, 1000)
		appendN(t, w, 1)
		var raw []byte
		if err := db.RawWriter().QueryRow(sqldb.Rebind(db.Dialect, "SELECT event FROM audit_event WHERE seq = ?"), 1).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"resourceType": "AuditEvent",
			"type":         map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
			"subtype":      []any{map[string]any{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}},
			"action":       "R",
			"recorded":     "2026-11-23T09:00:01.000Z",
			"outcome":      "0",
			"agent": []any{
				// BALP Read: the user is the requestor with no address, the
				// client (where the data goes) the destination with the
				// address, the server the source.
				map[string]any{
					"type":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}}},
					"who":       map[string]any{"reference": "Patient/p1"},
					"requestor": true,
				},
				map[string]any{
					"type":      map[string]any{"coding": []any{map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110152", "display": "Destination Role ID"}}},
					"who":       map[string]any{"display": "web browser"},
					"requestor": false,
					"network":   map[string]any{"address": "203.0.113.7", "type": "2"},
				},
				map[string]any{
					"type":      map[string]any{"coding": []any{map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153", "display": "Source Role ID"}}},
					"who":       map[string]any{"display": "carefront-test"},
					"requestor": false,
				},
			},
			"source": map[string]any{
				"observer": map[string]any{"display": "carefront-test"},
				"type":     []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}},
			},
			"entity": []any{
				map[string]any{
					"what": map[string]any{"reference": "Patient/p1"},
					"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
					"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
				},
				map[string]any{
					"what": map[string]any{"reference": "Observation/o1"},
					"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
					"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4", "display": "Domain Resource"},
				},
				map[string]any{
					"what": map[string]any{"identifier": map[string]any{"value": "req-1"}},
					"type": map[string]any{"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId", "display": "X-Request-Id"},
				},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stored AuditEvent mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestAppendRefusesFreeTextAndWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*audit.Record)
	}{
		{"prose reason", func(r *audit.Record) { r.Reason = "patient asked about HIV test" }},
		{"name as user", func(r *audit.Record) { r.User = "Jane Doe" }},
		{"search value as entity", func(r *audit.Record) { r.Entities = []audit.Entity{{What: "Observation?code=HIV"}} }},
		{"bad address", func(r *audit.Record) { r.Address = "jane's laptop" }},
		{"bad request id", func(r *audit.Record) { r.RequestID = "<script>" }},
		{"bad action", func(r *audit.Record) { r.Action = "X" }},
		{"bad outcome", func(r *audit.Record) { r.Outcome = "1" }},
		{"free-text display", func(r *audit.Record) {
			r.Type = audit.Coding{System: "http://example.org", Code: "x", Display: "Mrs. Smith's 2nd visit"}
		}},
	}
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w, _ := newWriter(t, db, 1000)
		for _, tt := range tests {
			r := read(1)
			tt.mod(&r)
			if err := w.Append(context.Background(), r); err == nil {
				t.Errorf("%s: Append = nil, want an error", tt.name)
			}
		}
		var n int
		if err := db.RawWriter().QueryRow("SELECT COUNT(*) FROM audit_event").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("audit_event has %d rows after refused appends, want 0", n)
		}
	})
}

func TestConcurrentWritersFormOneChain(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		// Two writers on one database stand for two carefront instances.
		w1, s := newWriter(t, db, 50)
		w2, _ := newWriter(t, db, 50)
		var wg sync.WaitGroup
		errs := make(chan error, 400)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := w1
				if g%2 == 1 {
					w = w2
				}
				for i := range 25 {
					errs <- w.Append(context.Background(), read(g*100+i))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		for _, w := range []*audit.Writer{w1, w2} {
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := audit.Verify(context.Background(), db, s.Trust())
		if err != nil {
			t.Fatalf("Verify = %v", err)
		}
		if rep.Records != 400 || rep.LastSeq != 400 || rep.Checkpoints < 8 {
			t.Errorf("Verify = %+v, want 400 records and at least 8 checkpoints", rep)
		}
	})
}

func TestCloseCommitsQueuedAndSignsFinalCheckpoint(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w, s := newWriter(t, db, 1000)
		appendN(t, w, 7)
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(context.Background(), read(8)); !errors.Is(err, audit.ErrClosed) {
			t.Errorf("Append after Close = %v, want ErrClosed", err)
		}
		rep, err := audit.Verify(context.Background(), db, s.Trust())
		if err != nil || rep.Records != 7 || rep.Checkpoints != 1 {
			t.Errorf("Verify = %+v, %v; want 7 records, 1 checkpoint", rep, err)
		}
	})
}

func TestAppendFailsWhenNotDurable(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w, _ := newWriter(t, db, 1000)
		appendN(t, w, 1)
		db.Close() // the database goes away under the writer
		if err := w.Append(context.Background(), read(2)); err == nil {
			t.Fatal("Append on a closed database = nil, want an error (no silent loss)")
		}
	})
}

func TestDatabaseRefusesUpdateAndDelete(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w, _ := newWriter(t, db, 1)
		appendN(t, w, 2)
		for _, q := range []string{
			"UPDATE audit_event SET outcome = '4' WHERE seq = 1",
			"DELETE FROM audit_event WHERE seq = 2",
			"UPDATE audit_checkpoint SET key_id = 'x'",
			"DELETE FROM audit_checkpoint",
		} {
			if _, err := db.RawWriter().Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want append-only refusal", q, err)
			}
		}
		if db.Dialect == sqldb.Postgres {
			if _, err := db.RawWriter().Exec("TRUNCATE audit_event"); err == nil {
				t.Error("TRUNCATE audit_event succeeded, want refusal")
			}
		}
		var outcome string
		db.RawWriter().QueryRow("SELECT outcome FROM audit_event WHERE seq = 1").Scan(&outcome)
		if outcome != "0" {
			t.Errorf("outcome after refused UPDATE = %q, want unchanged 0", outcome)
		}
	})
}

// dropGuards removes the append-only triggers as an attacker with database
// administrator rights could, so the tamper tests reach the verifier.
func dropGuards(t *testing.T, db *sqldb.DB) {
	t.Helper()
	var qs []string
	if db.Dialect == sqldb.Postgres {
		qs = []string{"ALTER TABLE audit_event DISABLE TRIGGER USER", "ALTER TABLE audit_checkpoint DISABLE TRIGGER USER"}
	} else {
		qs = []string{"DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete",
			"DROP TRIGGER audit_checkpoint_no_update", "DROP TRIGGER audit_checkpoint_no_delete"}
	}
	for _, q := range qs {
		if _, err := db.RawWriter().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func exec(t *testing.T, db *sqldb.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.RawWriter().Exec(sqldb.Rebind(db.Dialect, q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestVerifyNamesFirstTamperedRecord(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *sqldb.DB)
		wantSeq int64
		want    string
	}{
		{"edit event body", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "UPDATE audit_event SET event = ? WHERE seq = 5", []byte(strings.Replace(eventOf(t, db, 5), "Patient/p1", "Patient/p2", 1)))
		}, 5, "altered"},
		{"edit indexed column", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "UPDATE audit_event SET patient = 'Patient/other' WHERE seq = 6")
		}, 6, "indexed columns"},
		{"edit outcome column", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "UPDATE audit_event SET outcome = '4' WHERE seq = 2")
		}, 2, "indexed columns"},
		{"delete a middle record", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "DELETE FROM audit_event WHERE seq = 4")
		}, 4, "missing"},
		{"delete the last record", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "DELETE FROM audit_event WHERE seq = 10")
		}, 10, "missing"},
		{"reorder two records", func(t *testing.T, db *sqldb.DB) {
			// Swap the content of 3 and 4, keeping their positions.
			a, b := rowOf(t, db, 3), rowOf(t, db, 4)
			exec(t, db, "DELETE FROM audit_event WHERE seq IN (3, 4)")
			insertRow(t, db, 3, b)
			insertRow(t, db, 4, a)
		}, 3, "link"},
		{"insert a record", func(t *testing.T, db *sqldb.DB) {
			r := rowOf(t, db, 7)
			exec(t, db, "DELETE FROM audit_event WHERE seq >= 8")
			insertRow(t, db, 8, r)
		}, 8, "link"},
		{"rewrite the chain after an edit", func(t *testing.T, db *sqldb.DB) {
			// A capable attacker recomputes every hash; the record's MAC,
			// whose key is not in the database, names the edit.
			rewriteFrom(t, db, 2, func(ev string) string { return strings.Replace(ev, `"outcome":"0"`, `"outcome":"4"`, 1) })
		}, 2, "MAC does not match"},
		{"rewrite the chain with MACs stripped", func(t *testing.T, db *sqldb.DB) {
			rewriteFrom(t, db, 9, func(ev string) string { return strings.Replace(ev, `"outcome":"0"`, `"outcome":"4"`, 1) })
			exec(t, db, "DELETE FROM audit_checkpoint WHERE seq = 10")
			exec(t, db, "UPDATE audit_event SET mac = NULL, mac_key = NULL WHERE seq >= 9")
		}, 9, "no MAC"},
		{"MAC by a key of the attacker's", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "UPDATE audit_event SET mac_key = 'feedfacefeedface' WHERE seq = 6")
		}, 6, "not one of carefront's keys"},
		{"delete the tail with its checkpoints", func(t *testing.T, db *sqldb.DB) {
			// Records 9 and 10 and the checkpoints at 8 and 10 go: records
			// 5 to 8 are left with no checkpoint after them, long past the
			// interval.
			exec(t, db, "DELETE FROM audit_event WHERE seq >= 9")
			exec(t, db, "DELETE FROM audit_checkpoint WHERE seq >= 8")
		}, 5, "no signed checkpoint"},
		{"delete every checkpoint", func(t *testing.T, db *sqldb.DB) {
			exec(t, db, "DELETE FROM audit_checkpoint")
		}, 1, "no signed checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
				fixedClock(db)
				w, s := newWriter(t, db, 4)
				appendN(t, w, 10)
				if err := w.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				o := s.Trust()
				o.Interval, o.Now = 10*time.Second, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
				if _, err := audit.Verify(context.Background(), db, o); err != nil {
					t.Fatalf("Verify before tampering = %v", err)
				}
				dropGuards(t, db)
				tt.tamper(t, db)
				_, err := audit.Verify(context.Background(), db, o)
				var ve *audit.VerifyError
				if !errors.As(err, &ve) {
					t.Fatalf("Verify after tampering = %v, want a *VerifyError", err)
				}
				if ve.Seq != tt.wantSeq || !strings.Contains(ve.Error(), tt.want) {
					t.Errorf("Verify = %q (record %d), want record %d and %q", ve, ve.Seq, tt.wantSeq, tt.want)
				}
			})
		})
	}
}

func TestVerifyRejectsForeignKey(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w, _ := newWriter(t, db, 2)
		appendN(t, w, 2)
		other, _, _ := ed25519.GenerateKey(nil)
		_, err := audit.Verify(context.Background(), db, audit.VerifyOptions{Keys: []ed25519.PublicKey{other}})
		if err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("Verify with another key = %v, want unknown key", err)
		}
	})
}

type row struct {
	recorded, typeCode, action, outcome string
	patient, requestID, macKey          any
	event, prev, hash, mac              []byte
}

func rowOf(t *testing.T, db *sqldb.DB, seq int) row {
	t.Helper()
	var r row
	var p, q, k *string
	err := db.RawWriter().QueryRow(sqldb.Rebind(db.Dialect, "SELECT recorded, type_code, action, outcome, patient, request_id, event, prev_hash, hash, mac, mac_key FROM audit_event WHERE seq = ?"), seq).
		Scan(&r.recorded, &r.typeCode, &r.action, &r.outcome, &p, &q, &r.event, &r.prev, &r.hash, &r.mac, &k)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		r.patient = *p
	}
	if q != nil {
		r.requestID = *q
	}
	if k != nil {
		r.macKey = *k
	}
	return r
}

func insertRow(t *testing.T, db *sqldb.DB, seq int, r row) {
	t.Helper()
	exec(t, db, "INSERT INTO audit_event (seq, recorded, type_code, action, outcome, patient, request_id, event, prev_hash, hash, mac, mac_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		seq, r.recorded, r.typeCode, r.action, r.outcome, r.patient, r.requestID, r.event, r.prev, r.hash, r.mac, r.macKey)
}

func eventOf(t *testing.T, db *sqldb.DB, seq int) string {
	return string(rowOf(t, db, seq).event)
}

// rewriteFrom edits record seq with edit and recomputes every hash after it
// the way the writer would (the MACs it cannot: their key is not there).
func rewriteFrom(t *testing.T, db *sqldb.DB, seq int, edit func(string) string) {
	t.Helper()
	prev := rowOf(t, db, seq).prev
	for s := seq; s <= 10; s++ {
		r := rowOf(t, db, s)
		if s == seq {
			r.event = []byte(edit(string(r.event)))
			r.outcome = "4"
		}
		h := audit.ChainHashForTest(prev, int64(s), r.event)
		exec(t, db, "UPDATE audit_event SET event = ?, outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?", r.event, r.outcome, prev, h, s)
		prev = h
	}
}

// A search is recorded as BALP Query: the client is the source, the server
// the destination, and the query is an entity (type 2, role 24) holding the
// search base64, with identifying values redacted; the request id comes
// from the context.
func TestSearchRecordCarriesTheRedactedQuery(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w, _ := newWriter(t, db, 1000)
		ctx := telemetry.WithRequestID(context.Background(), "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c")
		err := w.Append(ctx, audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeSearch}, Action: audit.Execute,
			Outcome: audit.Success, User: "Person/a1", Address: "203.0.113.7", Patient: "Patient/p1",
			Query: "Patient?family=Smith&given=Adolph&birthdate=1944-11-28&identifier=urn:mrn|12345&address-city=Springfield&phone=555-0100&_count=10&gender=male&general-practitioner:Practitioner.name=Welby&Given:exact=Adolphus"})
		if err != nil {
			t.Fatal(err)
		}
		ev := eventOf(t, db, 1)
		for _, leak := range []string{"Smith", "Adolph", "1944", "12345", "Springfield", "555-0100", "Welby"} {
			if strings.Contains(ev, leak) {
				t.Errorf("the record holds %q", leak)
			}
		}
		var got struct {
			Agent []struct {
				Type      struct{ Coding []audit.Coding }
				Requestor bool
				Network   *struct{ Address string }
			}
			Entity []struct {
				What  *struct{ Identifier *struct{ Value string } }
				Type  *audit.Coding
				Role  *audit.Coding
				Query string
			}
		}
		if err := json.Unmarshal([]byte(ev), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Agent) != 3 || got.Agent[1].Type.Coding[0].Code != "110153" || got.Agent[2].Type.Coding[0].Code != "110152" ||
			got.Agent[0].Network != nil || got.Agent[1].Network == nil || !got.Agent[0].Requestor {
			t.Errorf("agents: %s", ev)
		}
		var query, reqID string
		for _, e := range got.Entity {
			if e.Role != nil && e.Role.Code == "24" && e.Type.Code == "2" {
				b, _ := base64.StdEncoding.DecodeString(e.Query)
				query = string(b)
			}
			if e.Type != nil && e.Type.Code == "XrequestId" {
				reqID = e.What.Identifier.Value
			}
		}
		want := "Patient?Given%3Aexact=redacted&_count=10&address-city=redacted&birthdate=redacted&family=redacted&gender=male&general-practitioner%3APractitioner.name=redacted&given=redacted&identifier=redacted&phone=redacted"
		if query != want {
			t.Errorf("query entity = %q, want %q", query, want)
		}
		if reqID != "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c" {
			t.Errorf("request id = %q, want the context's", reqID)
		}
		// A query that is not Type?params is refused.
		bad := audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeSearch}, Action: audit.Execute, Outcome: audit.Success, Query: "free text <b>"}
		if err := w.Append(ctx, bad); err == nil {
			t.Error("a free-text query was accepted")
		}
	})
}

// TestWritersTakeTurnsAtTheHead: a writer appends after the head it last
// left in one statement; when another instance has appended since, that
// statement inserts nothing and the writer appends after the real head. The
// chain stays one, in the order the appends happened.
func TestWritersTakeTurnsAtTheHead(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		w1, s := newWriter(t, db, 1000)
		w2, _ := newWriter(t, db, 1000)
		ctx := context.Background()
		order := []*audit.Writer{w1, w1, w1, w2, w2, w1, w1, w2, w1}
		for i, w := range order {
			if err := w.Append(ctx, read(i)); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		rows, err := db.RawWriter().Query("SELECT seq, request_id FROM audit_event ORDER BY seq")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var seq int64
			var req string
			if err := rows.Scan(&seq, &req); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("req-%d", n); seq != int64(n+1) || req != want {
				t.Errorf("record %d: seq %d, request %s; want seq %d, %s", n, seq, req, n+1, want)
			}
			n++
		}
		if n != len(order) {
			t.Fatalf("%d records, want %d", n, len(order))
		}
		rep, err := audit.Verify(ctx, db, s.Trust())
		if err != nil || rep.Records != int64(len(order)) {
			t.Errorf("Verify = %+v, %v; want %d records in one chain", rep, err, len(order))
		}
	})
}

// TestAppendWaitsForAnotherInstancesHeadLock: on PostgreSQL, while another
// instance holds the chain's head lock (mid-append), an append does not
// slip in beside it: it waits, then chains after what the other wrote.
func TestAppendWaitsForAnotherInstancesHeadLock(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		if db.Dialect != sqldb.Postgres {
			t.Skip("SQLite has one writer connection; no other instance can hold its lock")
		}
		w, s := newWriter(t, db, 1000)
		ctx := context.Background()
		appendN(t, w, 2) // w now knows the head
		other, err := db.RawWriter().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback()
		if _, err := other.Exec("SELECT pg_advisory_xact_lock($1)", audit.HeadLockID); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.Append(ctx, read(3)) }()
		select {
		case err := <-done:
			t.Fatalf("Append returned (%v) while another instance held the head lock", err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := other.Commit(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Append still waiting after the lock was released")
		}
		rep, err := audit.Verify(ctx, db, s.Trust())
		if err != nil || rep.Records != 3 {
			t.Errorf("Verify = %+v, %v; want 3 records", rep, err)
		}
	})
}
