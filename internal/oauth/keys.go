package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
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

// SigningKey is one of carefront's token signing keys.
type SigningKey struct {
	ID      string
	Private *rsa.PrivateKey
	Created time.Time
	Retired time.Time // zero for the key in use
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
	loaded time.Time
	keys   []*SigningKey // newest first
}

// Current returns the key to sign with, making the first one when there
// is none.
func (k *Keys) Current(ctx context.Context) (*SigningKey, error) {
	ks, err := k.all(ctx)
	if err != nil {
		return nil, err
	}
	for _, key := range ks {
		if key.Retired.IsZero() {
			return key, nil
		}
	}
	if _, err := k.Rotate(ctx); err != nil {
		return nil, err
	}
	return k.Current(ctx)
}

// Published returns the keys the JWKS lists: the one in use and those
// retired within KeyPublishedFor.
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

// Rotate makes a new signing key the one in use and retires the others;
// they stay published for KeyPublishedFor. Every instance follows within
// a minute; until then it signs with the older key, which stays valid.
func (k *Keys) Rotate(ctx context.Context) (string, error) {
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
	now := k.DB.Now().UTC().UnixMicro()
	err = k.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE oauth_signing_key SET retired_at = ? WHERE retired_at IS NULL", now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO oauth_signing_key (id, alg, private_sealed, public_jwk, created) VALUES (?, ?, ?, ?, ?)",
			id, string(SigningAlg), sealed, string(pub), now)
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

// all returns the keys, newest first, read again at most once a minute.
func (k *Keys) all(ctx context.Context) ([]*SigningKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loaded.IsZero() && time.Since(k.loaded) < keysRefresh {
		return k.keys, nil
	}
	var out []*SigningKey
	err := k.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, private_sealed, created, retired_at FROM oauth_signing_key WHERE alg = ? ORDER BY created DESC, id", string(SigningAlg))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				key     SigningKey
				sealed  []byte
				created int64
				retired sql.NullInt64
			)
			if err := rows.Scan(&key.ID, &sealed, &created, &retired); err != nil {
				return err
			}
			der, err := k.Seal.Open(sealed, seal.Binding{Table: "oauth_signing_key", Column: "private_sealed", Row: key.ID})
			if err != nil {
				return fmt.Errorf("signing key %s: %w", key.ID, err)
			}
			if key.Private, err = x509.ParsePKCS1PrivateKey(der); err != nil {
				return fmt.Errorf("signing key %s: %w", key.ID, err)
			}
			key.Created = time.UnixMicro(created).UTC()
			if retired.Valid {
				key.Retired = time.UnixMicro(retired.Int64).UTC()
			}
			out = append(out, &key)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: signing keys: %w", err)
	}
	k.keys, k.loaded = out, time.Now()
	return out, nil
}
