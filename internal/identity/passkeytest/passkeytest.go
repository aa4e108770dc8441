// Package passkeytest is a software WebAuthn authenticator for tests. It
// reads the options JSON carefront sends to the browser and answers with
// the JSON a browser would post back ("none" attestation, ES256 keys), so
// tests drive the real ceremony code. Its knobs make the bad answers a
// test needs: another origin, a counter that goes back, a changed backup
// flag, no user verification.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator holds passkeys, like a phone or security key would.
type Authenticator struct {
	// Origin is what the "browser" reports, e.g. http://localhost:8080.
	Origin string
	// NoUserVerification answers without the UV flag (no PIN/biometric).
	NoUserVerification bool
	// BackupEligible and BackupState are the BE and BS flags it reports.
	BackupEligible, BackupState bool

	Credentials []*Credential
}

// Credential is one passkey held by the authenticator.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Count      uint32
	key        *ecdsa.PrivateKey
}

var b64 = base64.RawURLEncoding

// options are the fields of PublicKeyCredentialCreationOptions and
// ...RequestOptions this authenticator reads.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Allow []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

func (a *Authenticator) flags(attested bool) byte {
	f := byte(0x01) // UP
	if !a.NoUserVerification {
		f |= 0x04
	}
	if a.BackupEligible {
		f |= 0x08
	}
	if a.BackupState {
		f |= 0x10
	}
	if attested {
		f |= 0x40
	}
	return f
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// Create answers navigator.credentials.create: optionsJSON is what the
// server sent; it returns the credential JSON to post back.
func (a *Authenticator) Create(optionsJSON []byte) ([]byte, *Credential, error) {
	var o options
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, nil, err
	}
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id: %w", err)
	}
	for _, ex := range o.PublicKey.Exclude {
		for _, c := range a.Credentials {
			if ex.ID == b64.EncodeToString(c.ID) {
				return nil, nil, errors.New("InvalidStateError: the authenticator holds an excluded credential")
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	c := &Credential{ID: make([]byte, 32), RPID: o.PublicKey.RP.ID, UserHandle: handle, key: key}
	rand.Read(c.ID)
	a.Credentials = append(a.Credentials, c)

	ecdh, _ := key.PublicKey.ECDH()
	raw := ecdh.Bytes() // 0x04 || X || Y
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:]})
	if err != nil {
		return nil, nil, err
	}
	rp := sha256.Sum256([]byte(c.RPID))
	auth := append(rp[:], a.flags(true), 0, 0, 0, 0)
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.ID)))
	auth = append(auth, c.ID...)
	auth = append(auth, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData("webauthn.create", o.PublicKey.Challenge, a.Origin)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
	})
	return out, c, err
}

// Get answers navigator.credentials.get with credential c (nil picks the
// first allowed one, or the first held one for a discoverable sign-in).
func (a *Authenticator) Get(optionsJSON []byte, c *Credential) ([]byte, error) {
	var o options
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, err
	}
	if c == nil {
		for _, cand := range a.Credentials {
			if len(o.PublicKey.Allow) == 0 {
				c = cand
				break
			}
			for _, al := range o.PublicKey.Allow {
				if al.ID == b64.EncodeToString(cand.ID) {
					c = cand
				}
			}
			if c != nil {
				break
			}
		}
		if c == nil {
			return nil, errors.New("NotAllowedError: no credential for this request")
		}
	}
	c.Count++
	return a.Sign(o.PublicKey.Challenge, c)
}

// Sign makes an assertion for a given challenge with c's current counter.
func (a *Authenticator) Sign(challenge string, c *Credential) ([]byte, error) {
	rp := sha256.Sum256([]byte(c.RPID))
	auth := append(rp[:], a.flags(false))
	auth = binary.BigEndian.AppendUint32(auth, c.Count)
	cd := clientData("webauthn.get", challenge, a.Origin)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
	})
}
