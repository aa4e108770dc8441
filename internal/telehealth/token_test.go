package telehealth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/telehealth"
)

func reason(err error) string {
	var te *telehealth.TokenError
	if errors.As(err, &te) && errors.Is(err, telehealth.ErrBadToken) {
		return te.Reason
	}
	return "not a refusal: " + err.Error()
}

// TestVisitTokens: a token joins its own visit once, within two minutes;
// a replay, an expired token, one for another visit, a forged or altered
// one, and one signed with no algorithm or another are each refused with
// the same answer (the reason kept apart for the audit); two instances
// on one database share the key and the record of used tokens.
func TestVisitTokens(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		keys, err := seal.Generate()
		if err != nil {
			t.Fatal(err)
		}
		one := &telehealth.Tokens{DB: db, Seal: keys}
		two := &telehealth.Tokens{DB: db, Seal: keys} // another instance
		claim := telehealth.Claim{Appointment: "appt-1", Participant: "Person/acct-maria", Role: telehealth.RolePatient}
		tok, err := one.Issue(ctx, claim)
		if err != nil {
			t.Fatal(err)
		}
		got, err := two.Redeem(ctx, tok, "appt-1")
		if err != nil || got.Participant != claim.Participant || got.Role != telehealth.RolePatient || got.Appointment != "appt-1" ||
			!got.Expires.Equal(clock.Now().Add(telehealth.TokenTTL)) {
			t.Fatalf("redeemed at the other instance: %+v, %v", got, err)
		}
		if _, err := one.Redeem(ctx, tok, "appt-1"); reason(err) != "replayed" {
			t.Errorf("a replay: %v", err)
		}

		fresh := func() string {
			t.Helper()
			s, err := one.Issue(ctx, claim)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		// Redeemed by an instance whose clock is 3 seconds behind the issuer's.
		early := fresh()
		clock.Add(-3 * time.Second)
		if _, err := two.Redeem(ctx, early, "appt-1"); err != nil {
			t.Errorf("a token redeemed by an instance 3 seconds behind: %v", err)
		}
		clock.Add(3 * time.Second)
		if _, err := one.Redeem(ctx, fresh(), "appt-2"); reason(err) != "other-visit" {
			t.Errorf("another visit's token: %v", err)
		}
		late := fresh()
		clock.Add(telehealth.TokenTTL + 6*time.Second) // past the end and the 5 seconds allowed for instances' clocks
		if _, err := one.Redeem(ctx, late, "appt-1"); reason(err) != "expired" {
			t.Errorf("an expired token: %v", err)
		}

		// Forged: the same claims signed with another Ed25519 key.
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: other}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "visit-1"))
		now := clock.Now()
		forged, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "carefront-visit", Subject: "Person/acct-maria", Audience: jwt.Audience{"visit:appt-1"},
			ID: "f1", Expiry: jwt.NewNumericDate(now.Add(time.Minute)), NotBefore: jwt.NewNumericDate(now)}).Claims(map[string]any{"role": "clinician"}).Serialize()
		if _, err := one.Redeem(ctx, forged, "appt-1"); reason(err) != "signature" {
			t.Errorf("a forged token: %v", err)
		}
		// Altered: the payload of a good token swapped for another's.
		good, other2 := strings.Split(fresh(), "."), strings.Split(forged, ".")
		if _, err := one.Redeem(ctx, good[0]+"."+other2[1]+"."+good[2], "appt-1"); reason(err) != "signature" {
			t.Errorf("an altered token: %v", err)
		}
		// Another algorithm (an HMAC over the same claims) and none at all.
		hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))}, (&jose.SignerOptions{}).WithHeader("kid", "visit-1"))
		hmac, _ := jwt.Signed(hs).Claims(jwt.Claims{Issuer: "carefront-visit", Audience: jwt.Audience{"visit:appt-1"}}).Serialize()
		for name, bad := range map[string]string{"HS256": hmac, "alg none": "eyJhbGciOiJub25lIiwia2lkIjoidmlzaXQtMSJ9." + good[1] + ".", "words": "not a token", "empty": ""} {
			if _, err := one.Redeem(ctx, bad, "appt-1"); reason(err) != "malformed" {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := one.Issue(ctx, telehealth.Claim{Appointment: "appt-1", Participant: "Person/x", Role: "admin"}); err == nil {
			t.Error("a token for a role no visit has was issued")
		}

		// Sixteen redemptions of one token at once: exactly one joins.
		tok = fresh()
		var wg sync.WaitGroup
		var mu sync.Mutex
		joined := 0
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst := one
				if i%2 == 1 {
					inst = two
				}
				if _, err := inst.Redeem(ctx, tok, "appt-1"); err == nil {
					mu.Lock()
					joined++
					mu.Unlock()
				} else if reason(err) != "replayed" {
					t.Errorf("redemption %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if joined != 1 {
			t.Errorf("%d of 16 concurrent redemptions joined, want 1", joined)
		}

		// The key is sealed: another encryption keyset cannot open it.
		stranger, _ := seal.Generate()
		if _, err := (&telehealth.Tokens{DB: db, Seal: stranger}).Issue(ctx, claim); err == nil {
			t.Error("a visit token was signed with a key opened by another keyset")
		}
	})
}
