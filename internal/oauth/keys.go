package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// SigningAlg is the ID token signature algorithm: RS256, as SMART
// clients expect.
const SigningAlg = jose.RS256

// signingKeyBits is the size of the RSA signing keys.
const signingKeyBits = 2048

// KeyPublishedFor is how long a retired signing key stays in the JWKS:
// longer than any token signed with it lives.
const KeyPublishedFor = 24 * time.Hour

// keysRefresh is how often an instance reads the key table again, so a
// rotation through another instance is followed.
const keysRefresh = time.Minute

// SealedColumns are the columns this package seals, for re-encryption
// after a rotation of the encryption keyset.
var SealedColumns = []seal.Column{{Table: "oauth_signing_key", IDColumn: "id", Column: "private_sealed"}}

// keyActivation is how long after it is made a new key starts signing:
// long enough for every instance to publish it (keysRefresh) first.
const keyActivation = 2 * keysRefresh

// SigningKey is one of carefront's token signing keys.
type SigningKey struct {
	ID         string
	Private    *rsa.PrivateKey
	Created    time.Time
	ActiveFrom time.Time // when it starts signing
	Retired    time.Time // when a newer key took over; zero while in use or not yet active
}

// Public is the key as the JWKS publishes it.
func (k *SigningKey) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.ID, Algorithm: string(SigningAlg), Use: "sig"}
}

// Keys keeps the token signing keys in the database, each private key
// sealed at rest, so every instance signs with the same key and
// publishes the same set.
type Keys struct {
	DB   *sqldb.DB
	Seal *seal.Keys

	mu     sync.Mutex
	make   sync.Mutex // one first key per process
	loaded time.Time
	keys   []*SigningKey // by active_from, newest first
}

// Current returns the key to sign with: the newest active one. With no
// key at all it makes the first, active at once.
func (k *Keys) Current(ctx context.Context) (*SigningKey, error) {
	for range 2 {
		ks, err := k.all(ctx)
		if err != nil {
			return nil, err
		}
		now := k.DB.Now()
		for _, key := range ks {
			if !key.ActiveFrom.After(now) {
				return key, nil
			}
		}
		if len(ks) > 0 { // only keys not active yet: cannot happen unless the clock went back
			return ks[len(ks)-1], nil
		}
		k.make.Lock()
		if ks, err := k.reload(ctx); err == nil && len(ks) == 0 {
			_, err = k.rotate(ctx, 0)
			if err != nil {
				k.make.Unlock()
				return nil, err
			}
		}
		k.make.Unlock()
	}
	return nil, errors.New("oauth: no signing key")
}

// Published returns the keys the JWKS lists: those not active yet, the
// one in use, and those it replaced within KeyPublishedFor.
func (k *Keys) Published(ctx context.Context) ([]*SigningKey, error) {
	ks, err := k.all(ctx)
	if err != nil {
		return nil, err
	}
	now := k.DB.Now()
	var out []*SigningKey
	for _, key := range ks {
		if key.Retired.IsZero() || now.Sub(key.Retired) < KeyPublishedFor {
			out = append(out, key)
		}
	}
	return out, nil
}

// Rotate makes a new signing key: published at once, signing two
// minutes later (once every instance lists it), after which the key it
// replaces stays published for KeyPublishedFor.
func (k *Keys) Rotate(ctx context.Context) (string, error) { return k.rotate(ctx, keyActivation) }

func (k *Keys) rotate(ctx context.Context, after time.Duration) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, signingKeyBits)
	if err != nil {
		return "", err
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	sealed, err := k.Seal.Seal(x509.MarshalPKCS1PrivateKey(priv), seal.Binding{Table: "oauth_signing_key", Column: "private_sealed", Row: id})
	if err != nil {
		return "", err
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: id, Algorithm: string(SigningAlg), Use: "sig"})
	if err != nil {
		return "", err
	}
	now := k.DB.Now().UTC()
	err = k.DB.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO oauth_signing_key (id, alg, private_sealed, public_jwk, created, active_from) VALUES (?, ?, ?, ?, ?, ?)",
			id, string(SigningAlg), sealed, string(pub), now.UnixMicro(), now.Add(after).UnixMicro())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("oauth: rotate signing key: %w", err)
	}
	k.mu.Lock()
	k.loaded = time.Time{}
	k.mu.Unlock()
	return id, nil
}

// all returns the keys, read again at most once a minute.
func (k *Keys) all(ctx context.Context) ([]*SigningKey, error) {
	k.mu.Lock()
	if !k.loaded.IsZero() && time.Since(k.loaded) < keysRefresh {
		ks := k.keys
		k.mu.Unlock()
		return ks, nil
	}
	k.mu.Unlock()
	return k.reload(ctx)
}

// reload reads the keys, newest active_from first, and works out when
// each was replaced (the next newer key's activation, once it is due).
func (k *Keys) reload(ctx context.Context) ([]*SigningKey, error) {
	var out []*SigningKey
	err := k.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, private_sealed, created, active_from FROM oauth_signing_key WHERE alg = ? ORDER BY active_from DESC, id", string(SigningAlg))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				key             SigningKey
				sealed          []byte
				created, active int64
			)
			if err := rows.Scan(&key.ID, &sealed, &created, &active); err != nil {
				return err
			}
			der, err := k.Seal.Open(sealed, seal.Binding{Table: "oauth_signing_key", Column: "private_sealed", Row: key.ID})
			if err != nil {
				return fmt.Errorf("signing key %s: %w", key.ID, err)
			}
			if key.Private, err = x509.ParsePKCS1PrivateKey(der); err != nil {
				return fmt.Errorf("signing key %s: %w", key.ID, err)
			}
			key.Created, key.ActiveFrom = time.UnixMicro(created).UTC(), time.UnixMicro(active).UTC()
			out = append(out, &key)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: signing keys: %w", err)
	}
	now := k.DB.Now()
	for i := 1; i < len(out); i++ {
		// Retired when the newest active key newer than it took over.
		for j := i - 1; j >= 0; j-- {
			if !out[j].ActiveFrom.After(now) {
				out[i].Retired = out[j].ActiveFrom
				break
			}
		}
	}
	k.mu.Lock()
	k.keys, k.loaded = out, time.Now()
	k.mu.Unlock()
	return out, nil
}
