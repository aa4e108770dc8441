package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// chainDomain and checkpointDomain separate the two kinds of hashed bytes.
const (
	chainDomain      = "carefront-audit-chain-v1\n"
	checkpointDomain = "carefront-audit-checkpoint-v1\n"
)

// genesis is the previous hash of the first record.
var genesis = make([]byte, sha256.Size)

// chainHash is the hash of record seq: it covers the previous record's hash,
// the record's own position and its canonical bytes, so that altering,
// removing, inserting or reordering any record changes every hash after it.
func chainHash(prev []byte, seq int64, canonical []byte) []byte {
	h := sha256.New()
	h.Write([]byte(chainDomain))
	h.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	h.Write(canonical)
	return h.Sum(nil)
}

// checkpointMessage is what a checkpoint's signature covers.
func checkpointMessage(seq int64, hash []byte, signedAt string) []byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m := []byte(checkpointDomain)
	m = append(m, n[:]...)
	m = append(m, hash...)
	return append(m, signedAt...)
}

// Signer signs checkpoints.
type Signer struct {
	key   ed25519.PrivateKey
	KeyID string
}

// NewSigner returns a Signer for an Ed25519 seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key: want a %d-byte Ed25519 seed, got %d bytes", ed25519.SeedSize, len(seed))
	}
	k := ed25519.NewKeyFromSeed(seed)
	return &Signer{key: k, KeyID: KeyID(k.Public().(ed25519.PublicKey))}, nil
}

// Public returns the verification key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeyID names a public key by the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParseSigningKey decodes a base64 Ed25519 seed (the configuration's form).
func ParseSigningKey(b64 string) (*Signer, error) {
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("audit signing key: not base64")
	}
	return NewSigner(seed)
}

// LoadOrCreateSigningKey reads the base64 seed at path, creating the file
// (mode 0600) with a fresh random key when it does not exist.
func LoadOrCreateSigningKey(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseSigningKey(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadOrCreateSigningKey(path)
		}
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	if _, err := f.WriteString(enc); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return NewSigner(priv.Seed())
}

func (s *Signer) sign(msg []byte) []byte { return ed25519.Sign(s.key, msg) }
