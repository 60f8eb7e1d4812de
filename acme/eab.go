package acme

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/store"
)

// EAB creates and verifies external account bindings. HMAC keys are kept
// sealed with AES-256-GCM under a key derived from the CA's intermediate
// passphrase, so a copy of the database alone does not reveal them.
type EAB struct {
	Store store.ACMEStore
	aead  cipher.AEAD
	Now   func() time.Time
}

// NewEAB derives the sealing key from secret (the intermediate key's
// passphrase).
func NewEAB(st store.ACMEStore, secret []byte, now func() time.Time) (*EAB, error) {
	k := sha256.Sum256(append([]byte("pkid eab seal v1\x00"), secret...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &EAB{Store: st, aead: aead, Now: now}, nil
}

// Create makes a binding key for role: it returns the KID and the HMAC key
// in base64url, the form ACME clients take (`--eab-kid`, `--eab-hmac-key`).
func (e *EAB) Create(ctx context.Context, role string) (string, string, error) {
	var kidb [12]byte
	hmacKey := make([]byte, 32)
	rand.Read(kidb[:])
	// Never one whose base64url starts with '-' (a first byte of
	// 0xf8-0xfb): certbot, like any argparse or getopt CLI, takes
	// "--eab-hmac-key -x..." for a missing value and a new option.
	for rand.Read(hmacKey); hmacKey[0]>>2 == 62; {
		rand.Read(hmacKey)
	}
	kid := hex.EncodeToString(kidb[:])
	nonce := make([]byte, e.aead.NonceSize())
	rand.Read(nonce)
	sealed := e.aead.Seal(nonce, nonce, hmacKey, []byte(kid))
	if err := e.Store.PutEABKey(ctx, &store.EABKey{KID: kid, Role: role, Sealed: sealed, CreatedAt: e.Now().UTC()}); err != nil {
		return "", "", err
	}
	return kid, base64.RawURLEncoding.EncodeToString(hmacKey), nil
}

func (e *EAB) open(k *store.EABKey) ([]byte, error) {
	n := e.aead.NonceSize()
	if len(k.Sealed) < n {
		return nil, errors.New("sealed EAB key too short")
	}
	return e.aead.Open(nil, k.Sealed[:n], k.Sealed[n:], []byte(k.KID))
}

// VerifyBinding implements EABVerifier (RFC 8555 §7.3.4): an HS256 JWS by
// the binding key over the account's JWK, with the newAccount url and no
// nonce; each key binds one account only.
func (e *EAB) VerifyBinding(ctx context.Context, role, accountID string, binding json.RawMessage, accountJWK *jose.JSONWebKey, newAccountURL string) (string, error) {
	jws, err := jose.ParseSignedJSON(string(binding), []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512})
	if err != nil || len(jws.Signatures) != 1 {
		return "", malformed("externalAccountBinding is not a JWS with one HS256 signature")
	}
	h := jws.Signatures[0].Protected
	if h.Nonce != "" || h.JSONWebKey != nil {
		return "", malformed("externalAccountBinding must not carry a nonce or a jwk")
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != newAccountURL {
		return "", malformed("externalAccountBinding url must be the newAccount URL")
	}
	k, err := e.Store.GetEABKey(ctx, h.KeyID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.Role != role) {
		return "", unauthorized(fmt.Sprintf("unknown external account binding key %q for role %s", h.KeyID, role))
	}
	if err != nil {
		return "", err
	}
	if !k.UsedAt.IsZero() {
		return "", unauthorized("external account binding key " + k.KID + " was already used")
	}
	key, err := e.open(k)
	if err != nil {
		return "", serverInternal("cannot unseal the binding key")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", unauthorized("externalAccountBinding MAC does not verify with the key of " + k.KID)
	}
	var bound jose.JSONWebKey
	if err := bound.UnmarshalJSON(payload); err != nil {
		return "", malformed("externalAccountBinding payload is not a JWK")
	}
	a, err1 := thumbprint(&bound)
	b, err2 := thumbprint(accountJWK)
	if err1 != nil || err2 != nil || a != b {
		return "", unauthorized("externalAccountBinding binds a different key than the account's")
	}
	if err := e.Store.UseEABKey(ctx, k.KID, accountID, e.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrStale) {
			return "", unauthorized("external account binding key " + k.KID + " was already used")
		}
		return "", err
	}
	return k.KID, nil
}
