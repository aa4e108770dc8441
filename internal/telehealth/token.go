// Package telehealth runs video visits. Its first part is the visit
// token: the claim carefront issues to a participant of one appointment's
// video visit, separate from the portal session and from any FHIR scope.
// A token names the appointment, the participant and their role, is
// signed with Ed25519 (the key shared by every instance, its private half
// sealed at rest), lives two minutes (enough to connect), and joins once:
// its id is written when it is redeemed, and a second redemption, on any
// instance, is refused. It is valid for nothing but joining that visit.
package telehealth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"carefront/internal/apperr"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// TokenTTL is how long a visit token can be redeemed after it is issued.
const TokenTTL = 2 * time.Minute

// clockSkew is how far apart two instances' clocks may be: a token issued
// by one is redeemed by another (behind a load balancer) this much before
// its start or after its end.
const clockSkew = 5 * time.Second

// Participant roles.
const (
	RolePatient   = "patient"
	RoleCaregiver = "caregiver"
	RoleClinician = "clinician"
	RoleGuest     = "guest"
)

var roles = []string{RolePatient, RoleCaregiver, RoleClinician, RoleGuest}

// issuer and audience prefix of visit tokens: a token of carefront's
// authorization server or a share link is none of these.
const (
	issuer      = "carefront-visit"
	audiencePre = "visit:"
	keyID       = "visit-1"
)

// Claim is what a visit token says.
type Claim struct {
	Appointment string // the Appointment id
	Participant string // who joins: "Person/ID" for an account, "Guest/ID" for a guest
	Role        string // patient, caregiver, clinician, guest
	ID          string // the token's id (jti)
	Expires     time.Time
}

// ErrBadToken is every token that cannot be redeemed: forged, expired,
// for another visit, or used already. One answer for all, so nothing
// learns which; the reason is for the audit record (Reason).
var ErrBadToken = apperr.New(apperr.Unauthorized, "this visit link has expired or was used already; go back to the visit and join again")

// TokenError is ErrBadToken with the reason a token was refused.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "visit token: " + e.Reason }
func (e *TokenError) Unwrap() error { return ErrBadToken }

func refused(reason string) error { return &TokenError{Reason: reason} }

// Tokens issues and redeems visit tokens.
type Tokens struct {
	DB   *sqldb.DB
	Seal *seal.Keys

	mu   sync.Mutex
	priv ed25519.PrivateKey
}

// Issue signs a token for one participant of one appointment's visit.
func (t *Tokens) Issue(ctx context.Context, c Claim) (string, error) {
	if c.Appointment == "" || c.Participant == "" || !validRole(c.Role) {
		return "", errors.New("telehealth: a visit token needs an appointment, a participant and a role")
	}
	priv, err := t.key(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", keyID))
	if err != nil {
		return "", err
	}
	var id [16]byte
	rand.Read(id[:])
	now := t.DB.Now().UTC()
	std := jwt.Claims{Issuer: issuer, Subject: c.Participant, Audience: jwt.Audience{audiencePre + c.Appointment},
		ID: hex.EncodeToString(id[:]), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(TokenTTL))}
	return jwt.Signed(signer).Claims(std).Claims(struct {
		Role string `json:"role"`
	}{c.Role}).Serialize()
}

// Redeem checks a token for the appointment and spends it: the signature,
// the issuer, the appointment, the time, and that it was not redeemed
// before (on any instance). A token that fails is an error wrapping
// ErrBadToken, with the reason in a *TokenError.
func (t *Tokens) Redeem(ctx context.Context, token, appointment string) (*Claim, error) {
	c, err := t.check(ctx, token, appointment)
	if err != nil {
		return nil, err
	}
	err = t.DB.Write(ctx, func(tx *sqldb.Tx) error {
		// The ids of tokens that can no longer be redeemed are let go.
		if _, err := tx.Exec(ctx, "DELETE FROM visit_token_used WHERE expires < ?", t.DB.Now().Add(-time.Minute).UnixMicro()); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "INSERT INTO visit_token_used (jti, expires) VALUES (?, ?) ON CONFLICT DO NOTHING", c.ID, c.Expires.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, refused("replayed"))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// check verifies everything but single use.
func (t *Tokens) check(ctx context.Context, token, appointment string) (*Claim, error) {
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(parsed.Headers) != 1 || parsed.Headers[0].KeyID != keyID {
		return nil, refused("malformed")
	}
	priv, err := t.key(ctx)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var extra struct {
		Role string `json:"role"`
	}
	if err := parsed.Claims(priv.Public(), &std, &extra); err != nil {
		return nil, refused("signature")
	}
	if appointment == "" {
		return nil, refused("other-visit")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audiencePre + appointment}, Time: t.DB.Now()}, clockSkew)
	switch {
	case errors.Is(err, jwt.ErrExpired), errors.Is(err, jwt.ErrNotValidYet):
		return nil, refused("expired")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, refused("other-visit")
	case err != nil:
		return nil, refused("claims")
	}
	if std.ID == "" || std.Subject == "" || std.Expiry == nil || !validRole(extra.Role) {
		return nil, refused("claims")
	}
	return &Claim{Appointment: appointment, Participant: std.Subject, Role: extra.Role, ID: std.ID, Expires: std.Expiry.Time()}, nil
}

func validRole(r string) bool { return slices.Contains(roles, r) }

// key returns the signing key, made on first use by whichever instance
// comes first (the others read that one).
func (t *Tokens) key(ctx context.Context) (ed25519.PrivateKey, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.priv != nil {
		return t.priv, nil
	}
	b := seal.Binding{Table: "visit_token_key", Column: "private_sealed", Row: keyID}
	for range 2 {
		var sealed []byte
		err := t.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT private_sealed FROM visit_token_key WHERE id = ?", keyID).Scan(&sealed)
		})
		if err == nil {
			seed, err := t.Seal.Open(sealed, b)
			if err != nil || len(seed) != ed25519.SeedSize {
				return nil, fmt.Errorf("telehealth: the visit token key does not open: %w", err)
			}
			t.priv = ed25519.NewKeyFromSeed(seed)
			return t.priv, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		sealedSeed, err := t.Seal.Seal(priv.Seed(), b)
		if err != nil {
			return nil, err
		}
		if err := t.DB.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO visit_token_key (id, private_sealed, public_key, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
				keyID, sealedSeed, []byte(pub), t.DB.Now().UnixMicro())
			return err
		}); err != nil {
			return nil, err
		}
		// Read back what won: this key, or another instance's.
	}
	return nil, errors.New("telehealth: no visit token key")
}
