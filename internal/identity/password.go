package identity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are argon2id's cost parameters. They are stored with each hash,
// so raising them later re-hashes passwords at their next sign-in.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams are OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MinPasswordLen and MaxPasswordLen are in characters (code points).
	// Long passphrases are welcome; the upper bound only stops abuse.
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// PolicyError says why a new password is refused. Code is for the UI's
// translated message; the Error text is English for logs and tests and
// never contains the password.
type PolicyError struct{ Code string }

// The policy codes.
const (
	PolicyTooShort   = "password-too-short"
	PolicyTooLong    = "password-too-long"
	PolicyCommon     = "password-common"
	PolicyPersonal   = "password-personal"
	PolicyNotUnicode = "password-invalid"
)

func (e *PolicyError) Error() string {
	switch e.Code {
	case PolicyTooShort:
		return fmt.Sprintf("the password is shorter than %d characters", MinPasswordLen)
	case PolicyTooLong:
		return fmt.Sprintf("the password is longer than %d characters", MaxPasswordLen)
	case PolicyCommon:
		return "the password is one of the most common passwords, which attackers try first"
	case PolicyPersonal:
		return "the password contains your email address or name"
	}
	return "the password is not valid text"
}

//go:embed common-passwords.txt
var commonPasswordsText []byte

var (
	commonOnce sync.Once
	common     map[string]struct{}
)

func commonPasswords() map[string]struct{} {
	commonOnce.Do(func() {
		common = make(map[string]struct{}, 20000)
		sc := bufio.NewScanner(bytes.NewReader(commonPasswordsText))
		for sc.Scan() {
			if w := sc.Text(); w != "" {
				common[w] = struct{}{}
			}
		}
	})
	return common
}

// normalize puts a password in Unicode NFKC form, so the same password
// typed on different keyboards is the same password. It neither truncates
// nor folds case.
func normalize(pw string) string { return norm.NFKC.String(pw) }

// CheckPassword applies the policy to a new password: 8 to 256
// characters, not one of the most common passwords, and not built from the
// person's own email or name (personal holds those).
func CheckPassword(pw string, personal ...string) error {
	if !utf8.ValidString(pw) {
		return &PolicyError{PolicyNotUnicode}
	}
	pw = normalize(pw)
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen {
		return &PolicyError{PolicyTooShort}
	}
	if n > MaxPasswordLen {
		return &PolicyError{PolicyTooLong}
	}
	lower := strings.ToLower(pw)
	if _, ok := commonPasswords()[lower]; ok {
		return &PolicyError{PolicyCommon}
	}
	for _, p := range personal {
		p = strings.ToLower(strings.TrimSpace(p))
		if local, _, ok := strings.Cut(p, "@"); ok {
			p = local
		}
		// The whole of it, and each part of a name or address like
		// "maria.ortega" or "ortega-demo".
		parts := append([]string{p}, strings.FieldsFunc(p, func(r rune) bool { return strings.ContainsRune(" ._-+'", r) })...)
		for _, part := range parts {
			if utf8.RuneCountInString(part) >= 4 && strings.Contains(lower, part) {
				return &PolicyError{PolicyPersonal}
			}
		}
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in the PHC string format,
// parameters and salt included.
func HashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(normalize(pw)), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("identity: not an argon2id hash this version can read")

func parseHash(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, errBadHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory < 8*1024 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 10 || p.Threads < 1 {
		return Params{}, nil, nil, errBadHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return Params{}, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches encoded, in constant time, and
// whether the hash should be replaced because its parameters are below want.
func VerifyPassword(encoded, pw string, want Params) (ok, rehash bool, err error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(normalize(pw)), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	rehash = ok && (p.Memory < want.Memory || p.Time < want.Time || p.Threads < want.Threads)
	return ok, rehash, nil
}

// ErrBusy means too many passwords are being hashed at once; the caller
// answers 429 with Retry-After instead of queueing (each hash holds 19 MiB).
var ErrBusy = errors.New("identity: too many sign-ins at once")

// Hasher bounds the argon2 hashes in flight, so memory stays bounded and
// excess sign-ins are refused fast rather than queued.
type Hasher struct {
	Params Params
	slots  chan struct{} // hashes running
	queue  chan struct{} // requests waiting for the next free slot
	dummy  string
}

// NewHasher allows limit hashes at once (at least 1), and half as many
// requests again (at least 1) waiting for one of them to finish; beyond
// that it refuses at once.
func NewHasher(p Params, limit int) *Hasher {
	limit = max(1, limit)
	h := &Hasher{Params: p, slots: make(chan struct{}, limit), queue: make(chan struct{}, max(1, limit/2))}
	// A hash of a random password, verified when the account does not
	// exist, so that case costs the same time as a wrong password.
	var b [16]byte
	rand.Read(b[:])
	h.dummy, _ = HashPassword(base64.RawStdEncoding.EncodeToString(b[:]), p)
	return h
}

// acquire takes a hashing slot. When all are busy, a request may wait in
// a short queue, so a slot that frees up is used at once instead of
// idling until the next request arrives; a waiter holds no hash memory
// and waits about one hash at most. Past the queue the answer is
// ErrBusy, at once.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case h.queue <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-h.queue }()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Busy reports whether every hashing slot and every place in the queue
// is taken right now, so a handler can answer 429 before doing any other
// work for the request.
func (h *Hasher) Busy() bool {
	return len(h.slots) == cap(h.slots) && len(h.queue) == cap(h.queue)
}

// Hash hashes a new password, or fails with ErrBusy.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	var (
		out string
		err error
	)
	lowPriority(func() { out, err = HashPassword(pw, h.Params) })
	return out, err
}

// Verify checks pw against encoded; an empty encoded (no such account)
// verifies against a dummy hash and fails, in the same time.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (ok, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if encoded == "" {
		lowPriority(func() { VerifyPassword(h.dummy, pw, h.Params) })
		return false, false, nil
	}
	lowPriority(func() { ok, rehash, err = VerifyPassword(encoded, pw, h.Params) })
	return ok, rehash, err
}
