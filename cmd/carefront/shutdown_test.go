package main

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"carefront/internal/sqldb"
)

// A request that outlives the shutdown timeout does not cost the audit
// trail its Application Stop record or its final signed checkpoint, and
// the exit status is 0 when both were written.
func TestShutdownPastItsTimeoutStillClosesTheAuditTrail(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect, "CAREFRONT_SHUTDOWN_TIMEOUT", "300ms")
			base, out, stop := serve(t, nil, env)
			u, _ := url.Parse(base)
			// A client sends a sign-in form's headers and part of its body,
			// then goes quiet: the handler waits for the rest.
			c, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("POST /signin HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nemail=a"))
			time.Sleep(200 * time.Millisecond)
			if err := stop(); err != nil {
				t.Fatalf("serve = %v, want exit 0 with the audit trail closed\n%s", err, out)
			}
			if !strings.Contains(out.String(), "shutdown timeout passed") {
				t.Errorf("the request did not outlive the timeout; the test proves nothing:\n%s", out)
			}
			ctx := context.Background()
			db, err := sqldb.Open(ctx, sqldb.Options{URL: env["CAREFRONT_DATABASE_URL"], DataDir: env["CAREFRONT_DATA_DIR"]})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var last, signed, stops int64
			err = db.Read(ctx, func(tx *sqldb.Tx) error {
				if err := tx.QueryRow(ctx, "SELECT MAX(seq) FROM audit_event").Scan(&last); err != nil {
					return err
				}
				if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM audit_event WHERE type_code = ? AND action = 'E' AND outcome = '0'",
					"http://dicom.nema.org/resources/ontology/DCM|110100").Scan(&stops); err != nil {
					return err
				}
				return tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoint").Scan(&signed)
			})
			if err != nil {
				t.Fatal(err)
			}
			if stops != 2 {
				t.Errorf("%d application records (start and stop), want 2", stops)
			}
			if signed != last {
				t.Errorf("the last checkpoint covers record %d, the chain ends at %d", signed, last)
			}
		})
	}
}
