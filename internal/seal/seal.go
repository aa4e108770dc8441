// Package seal encrypts sensitive fields at rest (TOTP seeds, client
// secrets, message text, attachments) with a Tink AEAD keyset.
//
// Every ciphertext is bound to where it is stored: the associated data names
// the table, column and row id, so a ciphertext copied to another row or
// column fails to open. The keyset lives in the data dir (mode 0600) or comes
// from configuration; a KMS can wrap it later. Seal never logs plaintext.
package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Binding says where a ciphertext is stored. All three parts are required.
type Binding struct {
	Table, Column, Row string
}

func (b Binding) aad() ([]byte, error) {
	if b.Table == "" || b.Column == "" || b.Row == "" {
		return nil, errors.New("seal: binding needs table, column and row")
	}
	var buf bytes.Buffer
	buf.WriteString("carefront-seal-v1")
	for _, s := range []string{b.Table, b.Column, b.Row} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		buf.Write(n[:])
		buf.WriteString(s)
	}
	return buf.Bytes(), nil
}

// ErrOpen is returned when a ciphertext cannot be opened: wrong binding, a
// key no longer in the keyset, or tampering. It never says which.
var ErrOpen = errors.New("seal: cannot decrypt (wrong row or key, or tampered)")

// Keys encrypts and decrypts with the primary key of a keyset and decrypts
// with any of its keys.
type Keys struct {
	// mu guards the fields that follow; Reload swaps them.
	mu      sync.RWMutex
	handle  *keyset.Handle
	primary tink.AEAD
}

func newKeys(h *keyset.Handle) (*Keys, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("seal: keyset: %w", err)
	}
	return &Keys{handle: h, primary: a}, nil
}

// Seal encrypts plaintext for the place b names.
func (k *Keys) Seal(plaintext []byte, b Binding) ([]byte, error) {
	ad, err := b.aad()
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	a := k.primary
	k.mu.RUnlock()
	return a.Encrypt(plaintext, ad)
}

// Open decrypts a ciphertext sealed for the place b names.
func (k *Keys) Open(ciphertext []byte, b Binding) ([]byte, error) {
	ad, err := b.aad()
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	a := k.primary
	k.mu.RUnlock()
	p, err := a.Decrypt(ciphertext, ad)
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}

// PrimaryKeyID reports the id of the key new ciphertexts are sealed with.
func (k *Keys) PrimaryKeyID() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.handle.KeysetInfo().GetPrimaryKeyId()
}

// KeyCount reports how many keys the keyset holds.
func (k *Keys) KeyCount() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.handle.Len()
}

// Stale reports whether ciphertext was sealed with a key other than the
// primary one, and so is due for re-encryption. Tink prefixes each
// ciphertext with a version byte and the 4-byte id of its key.
func (k *Keys) Stale(ciphertext []byte) bool {
	if len(ciphertext) < 5 || ciphertext[0] != 1 {
		return true
	}
	return binary.BigEndian.Uint32(ciphertext[1:5]) != k.PrimaryKeyID()
}

// Parse reads a keyset in Tink's JSON form.
func Parse(jsonKeyset string) (*Keys, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(strings.NewReader(jsonKeyset)))
	if err != nil {
		return nil, errors.New("seal: the keyset is not a valid Tink JSON keyset")
	}
	return newKeys(h)
}

// Generate returns a new keyset with one AES-256-GCM key.
func Generate() (*Keys, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	return newKeys(h)
}

// JSON returns the keyset in Tink's JSON form. It holds secret keys.
func (k *Keys) JSON() (string, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(k.handle, keyset.NewJSONWriter(&buf)); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Rotate adds a new AES-256-GCM key and makes it primary. Older keys stay,
// so existing ciphertexts still open; Reencrypt moves them to the new key.
func (k *Keys) Rotate() (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := keyset.NewManagerFromHandle(k.handle)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return 0, err
	}
	if err := m.SetPrimary(id); err != nil {
		return 0, err
	}
	h, err := m.Handle()
	if err != nil {
		return 0, err
	}
	a, err := aead.New(h)
	if err != nil {
		return 0, err
	}
	k.handle, k.primary = h, a
	return id, nil
}

// KeysetFile is the keyset's file name inside the data dir.
const KeysetFile = "keyset.json"

// LoadOrCreate reads the keyset at path, creating it (mode 0600) with a new
// key when absent.
func LoadOrCreate(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seal: read keyset: %w", err)
	}
	k, err := Generate()
	if err != nil {
		return nil, err
	}
	if err := k.save(path, true); err != nil {
		if errors.Is(err, os.ErrExist) { // another process created it first
			return LoadOrCreate(path)
		}
		return nil, err
	}
	return k, nil
}

// Save writes the keyset to path atomically with mode 0600.
func (k *Keys) Save(path string) error { return k.save(path, false) }

func (k *Keys) save(path string, exclusive bool) error {
	js, err := k.JSON()
	if err != nil {
		return err
	}
	if exclusive {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		return writeSynced(f, js)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyset-*")
	if err != nil {
		return fmt.Errorf("seal: save keyset: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := writeSynced(tmp, js); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeSynced writes s to f, syncs it to disk and closes it.
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
