package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/identity/passkeytest"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

const origin = "http://localhost:8080"

// auditReasons lists the outcome reasons of the audit trail, in order.
func auditReasons(t *testing.T, db *sqldb.DB) []string {
	t.Helper()
	var out []string
	re := regexp.MustCompile(`"outcomeDesc":"([^"]*)"`)
	err := db.Read(context.Background(), func(tx *sqldb.Tx) error {
		rows, err := tx.Query(context.Background(), "SELECT event FROM audit_event ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ev []byte
			if err := rows.Scan(&ev); err != nil {
				return err
			}
			if m := re.FindSubmatch(ev); m != nil {
				out = append(out, string(m[1]))
			}
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func passkeyAuth(t *testing.T, db *sqldb.DB) (*identity.Auth, *sqldbtest.Clock, *identity.Account) {
	t.Helper()
	s, c, a := setup(t, db)
	rp, err := identity.NewRelyingParty(origin, "carefront")
	if err != nil {
		t.Fatal(err)
	}
	return &identity.Auth{Store: s, Hasher: identity.NewHasher(cheap, 2), Audit: auditWriter(t, db), WebAuthn: rp}, c, a
}

// ok and created fail the test when the software authenticator could not
// answer, so a case cannot pass on a missing answer instead of a refused
// one.
func ok(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("authenticator: %v", err)
		}
		return b
	}
}

func created(t *testing.T) func([]byte, *passkeytest.Credential, error) []byte {
	return func(b []byte, _ *passkeytest.Credential, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("authenticator: %v", err)
		}
		return b
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register adds a passkey held by dev to acct through the real ceremony.
func register(t *testing.T, auth *identity.Auth, acct *identity.Account, dev *passkeytest.Authenticator, name string) (*identity.Passkey, *passkeytest.Credential) {
	t.Helper()
	ctx := context.Background()
	opts, token, err := auth.BeginPasskeyRegistration(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	resp, cred, err := dev.Create(mustJSON(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	p, err := auth.FinishPasskeyRegistration(ctx, acct, token, name, resp, "192.0.2.1", "")
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return p, cred
}

func TestPasskeyRegistrationAndSignIn(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, clock, acct := passkeyAuth(t, db)
		ctx := context.Background()
		phone := &passkeytest.Authenticator{Origin: origin, BackupEligible: true, BackupState: true}
		laptop := &passkeytest.Authenticator{Origin: origin}

		if has, _ := auth.Store.HasSecondFactor(ctx, acct.ID); has {
			t.Fatal("a new account has no second factor")
		}
		p1, _ := register(t, auth, acct, phone, "  My phone ")
		clock.Add(time.Minute)
		p2, _ := register(t, auth, acct, laptop, "Work laptop")
		keys, err := auth.Store.Passkeys(ctx, acct.ID)
		if err != nil || len(keys) != 2 {
			t.Fatalf("passkeys: %d %v", len(keys), err)
		}
		if keys[0].Name != "My phone" || !keys[0].BackupEligible || !keys[0].BackupState || keys[1].BackupEligible {
			t.Errorf("stored names and backup flags: %q BE=%v BS=%v, %q BE=%v", keys[0].Name, keys[0].BackupEligible, keys[0].BackupState, keys[1].Name, keys[1].BackupEligible)
		}
		if has, _ := auth.Store.HasSecondFactor(ctx, acct.ID); !has {
			t.Error("a passkey is a second factor")
		}

		// The same authenticator cannot register twice: its credential is
		// excluded in the options, so it refuses.
		opts, _, _ := auth.BeginPasskeyRegistration(ctx, acct)
		if _, _, err := phone.Create(mustJSON(t, opts)); err == nil {
			t.Error("the options do not exclude registered passkeys")
		}

		// Second factor after a password: only the account's passkeys are
		// allowed, and the counter is stored.
		aopts, token, err := auth.BeginPasskeySecondFactor(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := laptop.Get(mustJSON(t, aopts), nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := auth.FinishPasskey(ctx, token, resp, acct, "192.0.2.1", "")
		if err != nil || res.Alone || res.Passkey.ID != p2.ID || res.Passkey.SignCount != 1 {
			t.Fatalf("second factor: %v", err)
		}

		// Passkey alone: discoverable, the account comes from the passkey.
		dopts, token, err := auth.BeginPasskeySignIn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(dopts.Response.AllowedCredentials) != 0 || dopts.Response.UserVerification != "required" {
			t.Errorf("discoverable options: %d allowed, user verification %q", len(dopts.Response.AllowedCredentials), dopts.Response.UserVerification)
		}
		resp = ok(t)(phone.Get(mustJSON(t, dopts), nil))
		res, err = auth.FinishPasskey(ctx, token, resp, nil, "192.0.2.1", "")
		if err != nil || !res.Alone || res.Account.ID != acct.ID || res.Passkey.ID != p1.ID {
			t.Fatalf("passkey alone: %v", err)
		}
		keys, _ = auth.Store.Passkeys(ctx, acct.ID)
		if keys[0].LastUsed.IsZero() || keys[0].SignCount != 1 {
			t.Errorf("use not recorded: last used %v, count %d", keys[0].LastUsed, keys[0].SignCount)
		}
		want := []string{"passkey-added", "passkey-added", "signed-in-passkey", "signed-in-passkey-only"}
		if got := auditReasons(t, db); !slices.Equal(got, want) {
			t.Errorf("audit: %v, want %v", got, want)
		}
	})
}

func TestPasskeyBadAnswers(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, clock, acct := passkeyAuth(t, db)
		ctx := context.Background()
		dev := &passkeytest.Authenticator{Origin: origin}
		register(t, auth, acct, dev, "Phone")
		other := &identity.Account{Kind: identity.Person, Email: "walter@example.com"}
		if err := auth.Store.CreateAccount(ctx, other); err != nil {
			t.Fatal(err)
		}
		otherDev := &passkeytest.Authenticator{Origin: origin}
		register(t, auth, other, otherDev, "Walter's key")
		before, _ := auth.Store.Passkeys(ctx, acct.ID)

		begin := func(t *testing.T) ([]byte, string) {
			opts, token, err := auth.BeginPasskeySecondFactor(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			return mustJSON(t, opts), token
		}
		cases := []struct {
			name   string
			answer func(t *testing.T) (token string, resp []byte, current *identity.Account)
		}{
			{"another ceremony's challenge", func(t *testing.T) (string, []byte, *identity.Account) {
				_, token := begin(t)
				opts2, _ := begin(t)
				resp := ok(t)(dev.Get(opts2, nil))
				return token, resp, acct
			}},
			{"another origin", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				evil := *dev
				evil.Origin = "https://carefront.example.evil"
				resp := ok(t)(evil.Get(opts, dev.Credentials[0]))
				return token, resp, acct
			}},
			{"a ceremony answered twice", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				resp := ok(t)(dev.Get(opts, nil))
				if _, err := auth.FinishPasskey(ctx, token, resp, acct, "192.0.2.1", ""); err != nil {
					t.Fatalf("first answer: %v", err)
				}
				return token, resp, acct
			}},
			{"an expired ceremony", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				resp := ok(t)(dev.Get(opts, nil))
				clock.Add(identity.CeremonyValid + time.Second)
				return token, resp, acct
			}},
			{"a counter that went back (a cloned key)", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				var o struct {
					PublicKey struct{ Challenge string } `json:"publicKey"`
				}
				json.Unmarshal(opts, &o)
				c := dev.Credentials[0]
				c.Count = 0 // the stored counter is higher
				resp := ok(t)(dev.Sign(o.PublicKey.Challenge, c))
				c.Count = 100
				return token, resp, acct
			}},
			{"the backup-eligible flag changed", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				changed := *dev
				changed.BackupEligible = true
				resp := ok(t)(changed.Get(opts, dev.Credentials[0]))
				return token, resp, acct
			}},
			{"another person's passkey for this account", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				resp := ok(t)(otherDev.Get(opts, otherDev.Credentials[0]))
				return token, resp, acct
			}},
			{"this account's ceremony finished by another account", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token := begin(t)
				resp := ok(t)(dev.Get(opts, nil))
				return token, resp, other
			}},
			{"an unknown ceremony token", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, _ := begin(t)
				resp := ok(t)(dev.Get(opts, nil))
				return "bm90LWEtdG9rZW4", resp, acct
			}},
			{"garbage instead of a credential", func(t *testing.T) (string, []byte, *identity.Account) {
				_, token := begin(t)
				return token, []byte(`{"id":"x","type":"public-key"}`), acct
			}},
			{"a passkey-only sign-in without user verification", func(t *testing.T) (string, []byte, *identity.Account) {
				opts, token, _ := auth.BeginPasskeySignIn(ctx)
				lazy := *dev
				lazy.NoUserVerification = true
				resp := ok(t)(lazy.Get(mustJSON(t, opts), dev.Credentials[0]))
				return token, resp, nil
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dev.Credentials[0].Count = 50 // ahead of anything stored
				token, resp, current := tc.answer(t)
				n := len(auditReasons(t, db))
				_, err := auth.FinishPasskey(ctx, token, resp, current, "192.0.2.1", "")
				if !errors.Is(err, identity.ErrPasskey) || apperr.CodeOf(err) != apperr.Unauthorized {
					t.Fatalf("got %v, want ErrPasskey", err)
				}
				reasons := auditReasons(t, db)
				if len(reasons) != n+1 || reasons[n] == "" || reasons[n] == "signed-in-passkey" {
					t.Errorf("audit after the refusal: %v", reasons[n:])
				}
				// Nothing changed: no new passkey, the use was not recorded
				// (the counter moves only on a good use).
				after, _ := auth.Store.Passkeys(ctx, acct.ID)
				if len(after) != len(before) {
					t.Errorf("passkeys changed: %d -> %d", len(before), len(after))
				}
				// The owners sign in well between cases, so no case meets
				// the lockout the others built up.
				auth.Store.RecordSuccess(ctx, acct.Email)
				auth.Store.RecordSuccess(ctx, other.Email)
			})
		}
		reasons := auditReasons(t, db)
		if !slices.Contains(reasons, "passkey-counter-went-back") {
			t.Errorf("the clone warning is not audited by name: %v", reasons)
		}
	})
}

func TestPasskeyRegistrationRefusals(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, _, acct := passkeyAuth(t, db)
		ctx := context.Background()
		dev := &passkeytest.Authenticator{Origin: origin}
		for _, name := range []string{"", "   ", "a\x07bell", string(make([]rune, 61))} {
			opts, token, _ := auth.BeginPasskeyRegistration(ctx, acct)
			resp := created(t)(dev.Create(mustJSON(t, opts)))
			if _, err := auth.FinishPasskeyRegistration(ctx, acct, token, name, resp, "", ""); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("name %q: %v", name, err)
			}
		}
		// Another site's registration answer is refused.
		opts, token, _ := auth.BeginPasskeyRegistration(ctx, acct)
		evil := &passkeytest.Authenticator{Origin: "https://evil.example"}
		resp := created(t)(evil.Create(mustJSON(t, opts)))
		if _, err := auth.FinishPasskeyRegistration(ctx, acct, token, "Phone", resp, "", ""); !errors.Is(err, identity.ErrPasskey) {
			t.Errorf("another origin: %v", err)
		}
		// A registration without user verification cannot make a passkey
		// that signs in alone.
		opts, token, _ = auth.BeginPasskeyRegistration(ctx, acct)
		lazy := &passkeytest.Authenticator{Origin: origin, NoUserVerification: true}
		resp = created(t)(lazy.Create(mustJSON(t, opts)))
		if _, err := auth.FinishPasskeyRegistration(ctx, acct, token, "Phone", resp, "", ""); !errors.Is(err, identity.ErrPasskey) {
			t.Errorf("no user verification: %v", err)
		}
		if keys, _ := auth.Store.Passkeys(ctx, acct.ID); len(keys) != 0 {
			t.Errorf("refused registrations stored %d passkeys", len(keys))
		}
	})
}

func TestRemovingFactorsKeepsOne(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, _, acct := passkeyAuth(t, db)
		ctx := context.Background()
		p1, _ := register(t, auth, acct, &passkeytest.Authenticator{Origin: origin}, "Phone")
		if err := auth.RemovePasskey(ctx, acct, p1.ID, "", ""); !errors.Is(err, identity.ErrLastFactor) {
			t.Fatalf("removing the only factor: %v", err)
		}
		p2, _ := register(t, auth, acct, &passkeytest.Authenticator{Origin: origin}, "Laptop")
		if err := auth.RemovePasskey(ctx, acct, "nope", "", ""); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("unknown passkey: %v", err)
		}
		if err := auth.RemovePasskey(ctx, acct, p1.ID, "", ""); err != nil {
			t.Fatalf("removing one of two: %v", err)
		}
		keys, _ := auth.Store.Passkeys(ctx, acct.ID)
		if len(keys) != 1 || keys[0].ID != p2.ID {
			t.Errorf("left: %d passkeys", len(keys))
		}
		if got := auditReasons(t, db); got[len(got)-1] != "passkey-removed" {
			t.Errorf("audit: %v", got)
		}
	})
}
