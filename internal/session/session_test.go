package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carefront/internal/identity"
	"carefront/internal/seal"
	"carefront/internal/session"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func setup(t *testing.T, db *sqldb.DB) (*session.Manager, *sqldbtest.Clock, string) {
	t.Helper()
	c := sqldbtest.UseClock(db)
	k, _ := seal.Generate()
	a := &identity.Account{Kind: identity.Person, Email: "maria@example.com"}
	if err := identity.NewStore(db, k).CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return session.NewManager(db), c, a.ID
}

func TestIdleAndAbsoluteTimeouts(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		m, c, acct := setup(t, db)
		ctx := context.Background()
		tok, s, err := m.Create(ctx, acct, session.LevelMFA, 15*time.Minute, "Mozilla/5.0 (iPhone)", "192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 43 || s.MFAAt.IsZero() {
			t.Fatalf("token %q, session %+v", tok, s)
		}
		// Activity keeps it alive past the idle timeout, up to the absolute end.
		for i := 0; i < 11*4; i++ {
			c.Add(14 * time.Minute)
			if _, err := m.Lookup(ctx, tok); err != nil {
				t.Fatalf("after %v of activity: %v", time.Duration(i+1)*14*time.Minute, err)
			}
			if c.Now().Sub(s.Created) > 11*time.Hour+30*time.Minute {
				break
			}
		}
		c.Add(45 * time.Minute)
		if _, err := m.Lookup(ctx, tok); err != session.ErrNoSession {
			t.Fatalf("past the absolute lifetime: %v", err)
		}
		// Idle: 15 minutes without a request ends it.
		tok, _, _ = m.Create(ctx, acct, session.LevelMFA, 15*time.Minute, "", "")
		c.Add(15 * time.Minute)
		if _, err := m.Lookup(ctx, tok); err != session.ErrNoSession {
			t.Fatalf("idle 15 minutes: %v", err)
		}
		// Staff sessions idle out sooner.
		tok, _, _ = m.Create(ctx, acct, session.LevelMFA, 10*time.Minute, "", "")
		c.Add(10*time.Minute + time.Second)
		if _, err := m.Lookup(ctx, tok); err != session.ErrNoSession {
			t.Fatalf("staff idle 10 minutes: %v", err)
		}
	})
}

func TestForgedAndRenewedTokens(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		m, c, acct := setup(t, db)
		ctx := context.Background()
		tok, _, _ := m.Create(ctx, acct, session.LevelPassword, 15*time.Minute, "", "")
		for _, forged := range []string{"", "x", strings.Repeat("A", 43), tok[:42] + "B", tok + "A"} {
			if forged == tok {
				continue
			}
			if _, err := m.Lookup(ctx, forged); err != session.ErrNoSession {
				t.Errorf("forged token %q: %v", forged, err)
			}
		}
		s, _ := m.Lookup(ctx, tok)
		if m.Recent(s, 5*time.Minute) {
			t.Error("a password-only session counts as a recent second factor")
		}
		c.Add(time.Minute)
		tok2, err := m.Renew(ctx, tok, session.StrongCheck)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Lookup(ctx, tok); err != session.ErrNoSession {
			t.Errorf("the old id still works after renewal: %v", err)
		}
		s, err = m.Lookup(ctx, tok2)
		if err != nil || s.Level != session.LevelMFA || !m.Recent(s, 5*time.Minute) {
			t.Fatalf("renewed: %+v %v", s, err)
		}
		c.Add(5*time.Minute + time.Second)
		s, _ = m.Lookup(ctx, tok2)
		if m.Recent(s, 5*time.Minute) {
			t.Error("a second factor 5 minutes old still counts as recent")
		}
		if _, err := m.Renew(ctx, tok, session.NoCheck); err != session.ErrNoSession {
			t.Errorf("renewing a dead token: %v", err)
		}
		// An emailed code makes a session two-factor, never recent.
		weak, _, err := m.Create(ctx, acct, session.LevelPassword, 15*time.Minute, "test", "198.51.100.9")
		if err != nil {
			t.Fatal(err)
		}
		if weak, err = m.Renew(ctx, weak, session.WeakCheck); err != nil {
			t.Fatal(err)
		}
		if s, err := m.Lookup(ctx, weak); err != nil || s.Level != session.LevelMFA || m.Recent(s, 5*time.Minute) {
			t.Errorf("after an emailed code: %+v %v; want two-factor and not recent", s, err)
		}
	})
}

func TestListAndSignOutEverywhere(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		m, c, acct := setup(t, db)
		ctx := context.Background()
		a, sa, _ := m.Create(ctx, acct, session.LevelMFA, 15*time.Minute, "phone", "192.0.2.1")
		c.Add(time.Minute)
		b, _, _ := m.Create(ctx, acct, session.LevelMFA, 15*time.Minute, "laptop", "192.0.2.2")
		c.Add(time.Minute)
		cTok, _, _ := m.Create(ctx, acct, session.LevelMFA, 15*time.Minute, "tablet", "192.0.2.3")
		list, err := m.List(ctx, acct)
		if err != nil || len(list) != 3 || list[0].UserAgent != "tablet" {
			t.Fatalf("list: %v %v", list, err)
		}
		if err := m.EndByHash(ctx, acct, sa.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Lookup(ctx, a); err != session.ErrNoSession {
			t.Errorf("ended session still works: %v", err)
		}
		sc, _ := m.Lookup(ctx, cTok)
		if err := m.EndOthers(ctx, acct, sc.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Lookup(ctx, b); err != session.ErrNoSession {
			t.Errorf("other session survived sign-out everywhere: %v", err)
		}
		if _, err := m.Lookup(ctx, cTok); err != nil {
			t.Errorf("the current session was ended too: %v", err)
		}
		if err := m.End(ctx, cTok); err != nil {
			t.Fatal(err)
		}
		if list, _ := m.List(ctx, acct); len(list) != 0 {
			t.Errorf("%d sessions left after signing out of all", len(list))
		}
		// The database holds hashes, never the tokens.
		var n int
		db.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM session WHERE id_hash = ?", []byte(cTok)).Scan(&n)
		})
		if n != 0 {
			t.Error("a session token is stored in the clear")
		}
	})
}

func TestCookie(t *testing.T) {
	m := session.NewManager(nil)
	c := m.Cookie("tok")
	if c.Name != "__Host-carefront-session" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie = %+v", c)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c)
	if m.Token(r) != "tok" {
		t.Error("token not read back")
	}
}
