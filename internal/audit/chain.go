package audit

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// chainDomain and checkpointDomain separate the two kinds of hashed bytes.
const (
	chainDomain      = "carefront-audit-chain-v1\n"
	checkpointDomain = "carefront-audit-checkpoint-v1\n"
	macDomain        = "carefront-audit-record-mac-v1\n"
	stagedDomain     = "carefront-audit-staged-mac-v1\n"
)

// stagedMAC authenticates a staged record's bytes until the writer chains
// them: the staging table is as writable to an administrator as any other.
func stagedMAC(key, event []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stagedDomain))
	m.Write(event)
	return m.Sum(nil)
}

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

// recordMAC is a record's keyed MAC: HMAC-SHA256 under a key derived from
// the audit signing key, over the record's position and chain hash. The hash
// chain is public arithmetic (anyone may recompute it after editing a
// record); the MAC is not, since its key never enters the database, so a
// record rewritten by a database administrator is named by its MAC.
func recordMAC(key []byte, seq int64, hash []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write(hash)
	return m.Sum(nil)
}

// Signer holds one audit signing key: it signs checkpoints with Ed25519 and
// keys the per-record MACs with a key derived from the same seed.
type Signer struct {
	key    ed25519.PrivateKey
	macKey []byte
	KeyID  string
}

// NewSigner returns a Signer for an Ed25519 seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key: want a %d-byte Ed25519 seed, got %d bytes", ed25519.SeedSize, len(seed))
	}
	k := ed25519.NewKeyFromSeed(seed)
	mk, err := hkdf.Key(sha256.New, seed, nil, macDomain, 32)
	if err != nil {
		return nil, err
	}
	return &Signer{key: k, macKey: mk, KeyID: KeyID(k.Public().(ed25519.PublicKey))}, nil
}

// Public returns the verification key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

func (s *Signer) seed() []byte { return s.key.Seed() }

// DeriveKey derives a 32-byte key for another purpose from this key's seed
// (HKDF-SHA256, the purpose as info), for secrets every instance must share
// and keep across restarts without a setting of their own. Use the
// keyring's oldest key, which a rotation does not replace.
func (s *Signer) DeriveKey(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s.seed(), nil, "carefront-derived-key-v1:"+purpose, 32)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot give
	}
	return k
}

// Trust is what Verify needs to check everything this key signed: its
// public key for checkpoints and its MAC key for records.
func (s *Signer) Trust() VerifyOptions {
	return VerifyOptions{Keys: []ed25519.PublicKey{s.Public()}, MACKeys: map[string][]byte{s.KeyID: s.macKey}}
}

// KeyID names a public key by the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Keyring is every audit signing key carefront has used, oldest first; the
// last one signs new checkpoints and MACs. Older keys stay so that what
// they signed still verifies after a rotation.
type Keyring struct {
	Signers []*Signer
}

// Primary is the key that signs from now on.
func (k *Keyring) Primary() *Signer { return k.Signers[len(k.Signers)-1] }

// Trust is what Verify needs to check everything any key of k signed.
func (k *Keyring) Trust() VerifyOptions {
	o := VerifyOptions{MACKeys: map[string][]byte{}}
	for _, s := range k.Signers {
		o.Keys = append(o.Keys, s.Public())
		o.MACKeys[s.KeyID] = s.macKey
	}
	return o
}

// Rotate adds a new random key, which becomes the primary.
func (k *Keyring) Rotate() (*Signer, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	s, err := NewSigner(priv.Seed())
	if err != nil {
		return nil, err
	}
	k.Signers = append(k.Signers, s)
	return s, nil
}

// Encode is the keyring's text form: one base64 seed a line, oldest first.
// It is secret.
func (k *Keyring) Encode() string {
	var b strings.Builder
	for _, s := range k.Signers {
		b.WriteString(base64.StdEncoding.EncodeToString(s.seed()))
		b.WriteString("\n")
	}
	return b.String()
}

// ParseKeyring decodes base64 Ed25519 seeds separated by newlines, spaces
// or commas (the configuration's form), oldest first.
func ParseKeyring(text string) (*Keyring, error) {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("audit signing key: empty")
	}
	k := &Keyring{}
	for i, f := range fields {
		seed, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("audit signing key %d: not base64", i+1)
		}
		s, err := NewSigner(seed)
		if err != nil {
			return nil, err
		}
		k.Signers = append(k.Signers, s)
	}
	return k, nil
}

// LoadOrCreateKeyring reads the keyring at path, creating the file (mode
// 0600) with one fresh random key when it does not exist.
func LoadOrCreateKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseKeyring(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	k := &Keyring{}
	if _, err := k.Rotate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadOrCreateKeyring(path)
		}
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	if err := writeSynced(f, k.Encode()); err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	return k, nil
}

// SaveKeyring replaces the keyring file at path atomically (mode 0600).
func SaveKeyring(path string, k *Keyring) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".audit-signing-*")
	if err != nil {
		return fmt.Errorf("audit signing key %s: %w", path, err)
	}
	if err := writeSynced(f, k.Encode()); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("audit signing key %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("audit signing key %s: %w", path, err)
	}
	return nil
}

func writeSynced(f *os.File, s string) error {
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Signer) sign(msg []byte) []byte { return ed25519.Sign(s.key, msg) }
