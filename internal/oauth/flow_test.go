package oauth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical/store"
	"carefront/internal/oauth"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type flowFixture struct {
	db     *sqldb.DB
	clock  *sqldbtest.Clock
	flow   *oauth.Flow
	client *oauth.Client
	other  *oauth.Client
	reg    *oauth.Clients
}

func newFlow(t *testing.T, db *sqldb.DB) *flowFixture {
	t.Helper()
	ctx := context.Background()
	clock := sqldbtest.UseClock(db)
	reg := registry(t, db, true)
	c, _, err := reg.Add(ctx, oauth.NewClient{Name: "Health Diary", Kind: oauth.KindPublic, RedirectURIs: []string{"https://diary.example/cb"}, Reviewed: true, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := reg.Add(ctx, oauth.NewClient{Name: "Other", Kind: oauth.KindPublic, RedirectURIs: []string{"https://other.example/cb"}, Reviewed: true, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, patient_id, created) VALUES ('maria', 'person', 'maria@example.com', 'demo-maria', 0)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return &flowFixture{db: db, clock: clock, flow: &oauth.Flow{DB: db, Audit: reg.Audit}, client: c, other: o, reg: reg}
}

func scopes(t *testing.T, s string) []oauth.Scope {
	t.Helper()
	ss, err := oauth.ParseScopes(s)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// approved runs a request through approval and returns it with its code.
func (f *flowFixture) approved(t *testing.T, asked, granted string) (*oauth.Request, string) {
	t.Helper()
	ctx := context.Background()
	r, err := f.flow.CreateRequest(ctx, oauth.Request{ClientID: f.client.ID, RedirectURI: "https://diary.example/cb", Scopes: scopes(t, asked),
		State: "s", Nonce: "n", Challenge: "c", ResponseMode: "query"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "maria", Patient: "demo-maria", Scopes: scopes(t, granted), AuthTime: f.clock.Now(), AMR: []string{"pwd", "otp"}}); err != nil {
		t.Fatal(err)
	}
	code := strings.Repeat("c", 10) + r.ID
	if err := f.flow.SaveCode(ctx, r.ID, code); err != nil {
		t.Fatal(err)
	}
	return r, code
}

// TestAuthorizationCodeFlow: a request is approved with the scopes that
// stayed ticked, its code works once within a minute, and a replayed
// code revokes what it issued; codes and tokens are kept only hashed.
func TestAuthorizationCodeFlow(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFlow(t, db)
		asked := "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Condition.rs"
		r, err := f.flow.CreateRequest(ctx, oauth.Request{ClientID: f.client.ID, RedirectURI: "https://diary.example/cb", Scopes: scopes(t, asked),
			State: "s", Nonce: "n", Challenge: "c", ResponseMode: "query"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.flow.SaveCode(ctx, r.ID, "code-before-approval"); err != oauth.ErrNoRequest {
			t.Errorf("a code for a request not approved: %v", err)
		}
		if _, _, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "maria", Patient: "demo-maria", Scopes: scopes(t, "openid patient/Observation.cruds")}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("approving more than was asked for: %v", err)
		}
		if _, _, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "maria", Patient: "demo-maria", Scopes: scopes(t, "openid patient/Patient.rs")}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("approving a scope not asked for: %v", err)
		}
		granted := "openid fhirUser launch/patient offline_access patient/Observation.rs"
		g, ticket, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "maria", Patient: "demo-maria", Scopes: scopes(t, granted), AuthTime: f.clock.Now()})
		if err != nil || oauth.Format(g.Scopes) != granted || g.Expires.Sub(g.Created) != oauth.DefaultRefreshTTL || ticket == "" {
			t.Fatalf("Approve = %+v, %v", g, err)
		}
		if _, _, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "maria", Patient: "demo-maria", Scopes: scopes(t, granted)}); err != oauth.ErrNoRequest {
			t.Errorf("approving twice: %v", err)
		}
		for _, tc := range []struct {
			ticket string
			want   bool
		}{{"", false}, {"guess", false}, {ticket, true}, {ticket, false}} {
			if ok, err := f.flow.UseTicket(ctx, r.ID, tc.ticket); ok != tc.want || err != nil {
				t.Errorf("UseTicket(%q) = %v, %v; want %v", tc.ticket, ok, err, tc.want)
			}
		}
		if err := f.flow.SaveCode(ctx, r.ID, "the-code"); err != nil {
			t.Fatal(err)
		}
		refuse := errors.New("the verifier does not match")
		if _, _, err := f.flow.Exchange(ctx, "the-code", func(*oauth.Request) error { return refuse }); err != refuse {
			t.Fatalf("a failed check: %v", err)
		}
		got, tok, err := f.flow.Exchange(ctx, "the-code", func(*oauth.Request) error { return nil })
		if err != nil || got.ID != r.ID || oauth.Format(got.Scopes) != granted || got.Challenge != "c" {
			t.Fatalf("Exchange after a failed check (which burns nothing) = %+v, %v", got, err)
		}
		if tok.Access == "" || tok.Refresh == "" || !tok.AccessExpires.Equal(f.clock.Now().Add(oauth.DefaultAccessTTL)) {
			t.Fatalf("tokens = %+v", tok)
		}
		info, err := f.flow.Lookup(ctx, tok.Access)
		if err != nil || info.Grant.Patient != "demo-maria" || info.Grant.ClientID != f.client.ID || oauth.Format(info.Scopes) != granted {
			t.Fatalf("Lookup = %+v, %v", info, err)
		}
		if _, err := f.flow.Lookup(ctx, tok.Refresh); err != oauth.ErrTokenInactive {
			t.Errorf("a refresh token used as an access token: %v", err)
		}
		// Replay: refused, and the tokens it issued stop working.
		if _, _, err := f.flow.Exchange(ctx, "the-code", func(*oauth.Request) error { return nil }); err != oauth.ErrBadCode {
			t.Errorf("a replayed code: %v", err)
		}
		if _, err := f.flow.Lookup(ctx, tok.Access); err != oauth.ErrTokenInactive {
			t.Errorf("a token from a replayed code still works: %v", err)
		}
		if _, err := f.flow.Refresh(ctx, f.client.ID, tok.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("a refresh token from a replayed code still works: %v", err)
		}
		if outcome, _, ev := audittest.Last(t, db); outcome != string(audit.SeriousFailure) || !strings.Contains(ev, "authorization-code-replayed") {
			t.Errorf("replay audited as %s %s", outcome, ev)
		}
		// An expired code, and one never issued.
		_, code := f.approved(t, asked, granted)
		f.clock.Add(oauth.CodeTTL + time.Second)
		if _, _, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil }); err != oauth.ErrBadCode {
			t.Errorf("an expired code: %v", err)
		}
		if _, _, err := f.flow.Exchange(ctx, "never-issued", func(*oauth.Request) error { return nil }); err != oauth.ErrBadCode {
			t.Errorf("a made-up code: %v", err)
		}
		// An abandoned request expires.
		f.clock.Add(oauth.RequestTTL)
		if _, err := f.flow.Request(ctx, r.ID); err != oauth.ErrNoRequest {
			t.Errorf("an expired request: %v", err)
		}
		// Nothing secret is stored as given.
		var rows [][]byte
		db.Read(ctx, func(tx *sqldb.Tx) error {
			rs, err := tx.Query(ctx, "SELECT hash FROM oauth_token")
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				var h []byte
				rs.Scan(&h)
				rows = append(rows, h)
			}
			return nil
		})
		for _, h := range rows {
			if bytes.Contains(h, []byte(tok.Access)) || len(h) != 32 {
				t.Errorf("a token is stored as given")
			}
		}
	})
}

// TestSTU2TokenRefresh: every refresh rotates; the same token twice
// within the grace window is two requests at once and both succeed;
// later it is theft and ends the family; refresh stops at the grant's
// absolute lifetime, for another app, and for scopes never granted.
func TestSTU2TokenRefresh(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFlow(t, db)
		granted := "openid offline_access patient/Observation.rs patient/Condition.rs"
		_, code := f.approved(t, granted, granted)
		_, first, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.flow.Refresh(ctx, f.other.ID, first.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("another app's refresh: %v", err)
		}
		if _, err := f.flow.Refresh(ctx, f.client.ID, first.Refresh, scopes(t, "patient/Patient.rs")); apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "invalid_scope") {
			t.Errorf("refresh for a scope never granted: %v", err)
		}
		// Two at once: both get tokens.
		var wg sync.WaitGroup
		got := make([]*oauth.Tokens, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = f.flow.Refresh(ctx, f.client.ID, first.Refresh, scopes(t, "offline_access patient/Observation.rs"))
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || got[0].Refresh == got[1].Refresh || oauth.Format(got[0].Scopes) != "offline_access patient/Observation.rs" {
			t.Fatalf("concurrent refresh: %v %v", errs[0], errs[1])
		}
		// One live refresh token in the family: the later of the two.
		live := 0
		var second *oauth.Tokens
		for _, g := range got {
			if _, err := f.flow.Lookup(ctx, g.Access); err != nil {
				t.Errorf("a new access token: %v", err)
			}
			var revoked bool
			db.Read(ctx, func(tx *sqldb.Tx) error {
				var r sql.NullInt64
				err := tx.QueryRow(ctx, "SELECT revoked_at FROM oauth_token WHERE hash = ?", sha(g.Refresh)).Scan(&r)
				revoked = r.Valid
				return err
			})
			if !revoked {
				live++
				second = g
			}
		}
		if live != 1 || oauth.Format(second.Scopes) != "offline_access patient/Observation.rs" {
			t.Fatalf("%d live refresh tokens after two refreshes at once, want 1", live)
		}
		// The rotated token presented after the grace window: theft.
		f.clock.Add(oauth.RefreshGrace + time.Second)
		if _, err := f.flow.Refresh(ctx, f.client.ID, first.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("a used refresh token after the grace window: %v", err)
		}
		for _, tk := range []string{got[0].Access, got[1].Access} {
			if _, err := f.flow.Lookup(ctx, tk); err != oauth.ErrTokenInactive {
				t.Errorf("after reuse the family's access tokens still work: %v", err)
			}
		}
		if _, err := f.flow.Refresh(ctx, f.client.ID, second.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("after reuse the family's refresh token still works: %v", err)
		}
		if outcome, _, ev := audittest.Last(t, db); outcome != string(audit.SeriousFailure) || !strings.Contains(ev, "refresh-token-reused") {
			t.Errorf("reuse audited as %s %s", outcome, ev)
		}

		// A refresh narrowed to fewer scopes narrows the access token
		// only: the next refresh may ask for all the family had.
		_, code = f.approved(t, granted, granted)
		_, nt, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		narrow, err := f.flow.Refresh(ctx, f.client.ID, nt.Refresh, scopes(t, "patient/Observation.rs"))
		if err != nil || oauth.Format(narrow.Scopes) != "patient/Observation.rs" || narrow.Refresh == "" {
			t.Fatalf("narrowed refresh: %+v, %v", narrow, err)
		}
		if wide, err := f.flow.Refresh(ctx, f.client.ID, narrow.Refresh, nil); err != nil || oauth.Format(wide.Scopes) != granted {
			t.Errorf("after a narrowed refresh, the family's scopes: %+v, %v", wide, err)
		}

		// A fresh family lives until the grant's absolute lifetime.
		_, code = f.approved(t, granted, granted)
		_, tok, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(oauth.DefaultAccessTTL + time.Second)
		if _, err := f.flow.Lookup(ctx, tok.Access); err != oauth.ErrTokenInactive {
			t.Errorf("an expired access token: %v", err)
		}
		for range 3 {
			if tok, err = f.flow.Refresh(ctx, f.client.ID, tok.Refresh, nil); err != nil {
				t.Fatal(err)
			}
		}
		f.clock.Add(oauth.DefaultRefreshTTL)
		if _, err := f.flow.Refresh(ctx, f.client.ID, tok.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("refresh past the grant's lifetime: %v", err)
		}
	})
}

// TestSTU2TokenRevocation: revoking a grant, revoking a token, or disabling the
// app stops tokens at their next use; only the record's own grant can
// be revoked through it.
func TestSTU2TokenRevocation(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFlow(t, db)
		granted := "offline_access patient/Observation.rs"
		issue := func() *oauth.Tokens {
			_, code := f.approved(t, granted, granted)
			_, tok, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		a := issue()
		if err := f.flow.RevokeGrant(ctx, a.Grant.ID, "someone-else", "Person/x"); err != oauth.ErrNoGrant {
			t.Errorf("revoking a grant of another record: %v", err)
		}
		if err := f.flow.RevokeGrant(ctx, a.Grant.ID, "demo-maria", "Person/maria"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.flow.Lookup(ctx, a.Access); err != oauth.ErrTokenInactive {
			t.Errorf("access after disconnect: %v", err)
		}
		if _, err := f.flow.Refresh(ctx, f.client.ID, a.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("refresh after disconnect: %v", err)
		}
		if gs, _ := f.flow.Grants(ctx, "demo-maria"); len(gs) != 1 || gs[0].Revoked.IsZero() {
			t.Errorf("grants after disconnect: %+v", gs)
		}

		b := issue()
		if err := f.flow.RevokeToken(ctx, f.other.ID, b.Refresh); err != nil {
			t.Fatal(err)
		}
		if _, err := f.flow.Lookup(ctx, b.Access); err != nil {
			t.Errorf("another app's revocation ended the token: %v", err)
		}
		if err := f.flow.RevokeToken(ctx, f.client.ID, b.Refresh); err != nil {
			t.Fatal(err)
		}
		if _, err := f.flow.Lookup(ctx, b.Access); err != oauth.ErrTokenInactive {
			t.Errorf("revoking the refresh token leaves its family's access token working: %v", err)
		}

		c := issue()
		if err := f.reg.Disable(ctx, f.client.ID, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.flow.Lookup(ctx, c.Access); err != oauth.ErrTokenInactive {
			t.Errorf("a disabled app's token: %v", err)
		}
		if _, err := f.flow.Refresh(ctx, f.client.ID, c.Refresh, nil); err != oauth.ErrBadRefresh {
			t.Errorf("a disabled app's refresh: %v", err)
		}
	})
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// TestPurge: expired requests, tokens and assertion ids go a day after
// they expire; grants stay, and tokens in force are untouched.
func TestPurge(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFlow(t, db)
		granted := "offline_access patient/Observation.rs"
		_, code := f.approved(t, granted, granted)
		_, old, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO oauth_jti (client_id, jti, expires) VALUES ('c', 'j', ?)", f.clock.Now().UnixMicro())
			return err
		})
		f.clock.Add(oauth.DefaultAccessTTL + oauth.PurgeAfter + time.Minute)
		_, code = f.approved(t, granted, granted)
		_, fresh, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.flow.Purge(ctx)
		if err != nil || n != 3 { // the old access token, the first request, the jti
			t.Errorf("Purge = %d, %v; want 3 rows", n, err)
		}
		if _, err := f.flow.Lookup(ctx, fresh.Access); err != nil {
			t.Errorf("a token in force after the purge: %v", err)
		}
		if _, err := f.flow.Refresh(ctx, f.client.ID, old.Refresh, nil); err != nil {
			t.Errorf("the old family's refresh token (still in force) after the purge: %v", err)
		}
		if gs, _ := f.flow.Grants(ctx, "demo-maria"); len(gs) != 2 {
			t.Errorf("grants after the purge: %d, want both", len(gs))
		}
	})
}

// TestTokensAreAudited: a code exchange and each refresh write an audit
// record in the tokens' own transaction (staged, then chained by the
// writer), naming the person, the patient, the app and the new access
// token's id, never a token.
func TestTokensAreAudited(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFlow(t, db)
		ctx := context.Background()
		_, code := f.approved(t, "launch/patient offline_access patient/Observation.rs", "launch/patient offline_access patient/Observation.rs")
		_, tok, err := f.flow.Exchange(ctx, code, func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		next, err := f.flow.Refresh(ctx, f.client.ID, tok.Refresh, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.reg.Audit.Chain(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ reason, access string }{{"token-issued", tok.Access}, {"token-refreshed", next.Access}} {
			info, err := f.flow.Lookup(ctx, c.access)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range audittest.Events(t, db) {
				if strings.Contains(e, tok.Access) || strings.Contains(e, tok.Refresh) || strings.Contains(e, next.Refresh) {
					t.Fatal("a token is in the audit trail")
				}
				found = found || strings.Contains(e, c.reason) && strings.Contains(e, "access-token:"+info.ID) && strings.Contains(e, "Patient/demo-maria") &&
					strings.Contains(e, f.client.ID) && strings.Contains(e, "Person/maria")
			}
			if !found {
				t.Errorf("no audit record %s naming the token, the patient, the app and the person", c.reason)
			}
		}
	})
}

// notices records the notices a flow queues.
type notices struct {
	mu   sync.Mutex
	sent []string
}

func (n *notices) QueueNotice(_ context.Context, _ *sqldb.Tx, account, event string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, "account "+account+" "+event)
	return nil
}

func (n *notices) QueuePatientNotice(_ context.Context, _ *sqldb.Tx, patient, event string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, "patient "+patient+" "+event)
	return nil
}

// TestNoticesOfConnectionsAndTheirEnd: connecting and disconnecting an
// app are told to the patient; a week before a long-lived grant ends
// (offline_access, 90 days) the patient is told once, however many
// instances look at once; a short-lived one (online_access) and a
// disconnected one are not.
func TestNoticesOfConnectionsAndTheirEnd(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFlow(t, db)
		n := &notices{}
		f.flow.Notices = n
		ctx := context.Background()
		f.approved(t, "launch/patient offline_access patient/Observation.rs", "launch/patient offline_access patient/Observation.rs")
		f.approved(t, "launch/patient online_access patient/Observation.rs", "launch/patient online_access patient/Observation.rs")
		r3, _ := f.approved(t, "launch/patient offline_access patient/Condition.rs", "launch/patient offline_access patient/Condition.rs")
		if got := strings.Count(strings.Join(n.sent, "\n"), "patient demo-maria app-connected"); got != 3 {
			t.Fatalf("connected notices: %v", n.sent)
		}
		req, _ := f.flow.Request(ctx, r3.ID)
		if err := f.flow.RevokeGrant(ctx, req.GrantID, "demo-maria", "Person/maria"); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(n.sent, "patient demo-maria app-disconnected") {
			t.Errorf("no disconnected notice: %v", n.sent)
		}
		if told, err := f.flow.NoticeEnding(ctx); err != nil || told != 0 {
			t.Fatalf("a day in: told %d, %v", told, err)
		}
		f.clock.Add(oauth.DefaultRefreshTTL - 6*24*time.Hour)
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				told, err := f.flow.NoticeEnding(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += told
				mu.Unlock()
			}()
		}
		wg.Wait()
		if total != 1 || strings.Count(strings.Join(n.sent, "\n"), "app-access-ends") != 1 {
			t.Errorf("six days before the end: told %d, %v", total, n.sent)
		}
		if told, _ := f.flow.NoticeEnding(ctx); told != 0 {
			t.Errorf("told again: %d", told)
		}
	})
}

// TestEndedGrantsCloseTheirConsents: a grant whose lifetime is over, or
// whose app the clinic disabled, has its Consent written as inactive
// once; a grant in force keeps an active one.
func TestEndedGrantsCloseTheirConsents(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFlow(t, db)
		st := store.New(db)
		f.flow.Store = st
		ctx := context.Background()
		grantOf := func(r *oauth.Request) string {
			req, _ := f.flow.Request(ctx, r.ID)
			return req.GrantID
		}
		rOnline, _ := f.approved(t, "launch/patient online_access patient/Observation.rs", "launch/patient online_access patient/Observation.rs")
		rOffline, _ := f.approved(t, "launch/patient offline_access patient/Observation.rs", "launch/patient offline_access patient/Observation.rs")
		status := func(grant string) string {
			res, err := st.Read(ctx, "Consent", oauth.ConsentID(grant))
			if err != nil {
				t.Fatal(err)
			}
			var c struct{ Status string }
			json.Unmarshal(res.Raw, &c)
			return c.Status
		}
		online, offline := grantOf(rOnline), grantOf(rOffline)
		if status(online) != "active" || status(offline) != "active" {
			t.Fatal("new grants' Consents are not active")
		}
		f.clock.Add(13 * time.Hour)
		if n, err := f.flow.CloseEnded(ctx); err != nil || n != 1 {
			t.Fatalf("after 13 hours: closed %d, %v", n, err)
		}
		if status(online) != "inactive" || status(offline) != "active" {
			t.Errorf("after 13 hours: online %s, offline %s", status(online), status(offline))
		}
		if err := f.reg.Disable(ctx, f.client.ID, "test"); err != nil {
			t.Fatal(err)
		}
		if n, err := f.flow.CloseEnded(ctx); err != nil || n != 1 || status(offline) != "inactive" {
			t.Errorf("after disabling the app: closed %d, %v, %s", n, err, status(offline))
		}
		if n, _ := f.flow.CloseEnded(ctx); n != 0 {
			t.Errorf("closed again: %d", n)
		}
		// Each closing is in the audit trail, once, with its cause.
		for grant, reason := range map[string]string{online: "app-grant-expired", offline: "app-disabled"} {
			n := 0
			for _, e := range audittest.Events(t, db) {
				if strings.Contains(e, `"`+reason+`"`) && strings.Contains(e, "Consent/"+oauth.ConsentID(grant)) &&
					strings.Contains(e, "Patient/demo-maria") && strings.Contains(e, f.client.ID) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d audit records of %s closing its Consent (%s), want 1", n, grant, reason)
			}
		}
	})
}
