package ca

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"
	"go.step.sm/crypto/kms/uri"
)

// TokenKey is a CA key in a PKCS#11 token (an HSM, a smart card,
// SoftHSM), named by a PKCS#11 URI (RFC 7512) instead of a key file: it
// signs inside the token and never exists in pkid's memory or on its
// disk. A token can go away under a running pkid (a network HSM
// restarting) and leave its session's handles invalid for good, so a
// failed signature closes the session and opens the token again, at most
// once per reopenEvery, before it gives up; Close ends the session.
type TokenKey struct {
	uri string
	pub crypto.PublicKey

	mu     sync.RWMutex
	kms    apiv1.KeyManager // nil while the token could not be opened again
	signer crypto.Signer
	gen    uint64 // counts sessions, so concurrent failures reopen once
	tried  time.Time
	tryErr error
}

// reopenEvery paces attempts to open a token that went away, so a burst
// of requests against a dead HSM does not become a burst of logins.
const reopenEvery = time.Second

// Public implements crypto.Signer; it answers from memory, token or not.
func (k *TokenKey) Public() crypto.PublicKey { return k.pub }

// Sign implements crypto.Signer, opening the token again once if the
// session fails.
func (k *TokenKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, gen, err := k.sign(rand, digest, opts)
	if err == nil {
		return sig, nil
	}
	if rerr := k.reopen(gen); rerr != nil {
		return nil, fmt.Errorf("%w (opening the token again: %v)", err, rerr)
	}
	sig, _, err = k.sign(rand, digest, opts)
	return sig, err
}

func (k *TokenKey) sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, uint64, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.signer == nil {
		return nil, k.gen, fmt.Errorf("no session with the token of %s: %w", k.uri, k.tryErr)
	}
	sig, err := k.signer.Sign(rand, digest, opts)
	return sig, k.gen, err
}

// reopen replaces session gen, unless another caller has already: it
// closes it (the module is reinitialized once no session holds it, which
// some tokens need to be seen again) and opens the token anew, checking
// that the key found is the same key.
func (k *TokenKey) reopen(gen uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen != gen {
		return nil
	}
	if time.Since(k.tried) < reopenEvery {
		return fmt.Errorf("tried %s ago: %w", time.Since(k.tried).Round(time.Millisecond), k.tryErr)
	}
	k.tried = time.Now()
	if k.kms != nil {
		k.kms.Close()
		k.kms, k.signer = nil, nil
	}
	k.gen++
	kms, s, err := openKey(context.Background(), k.uri)
	if err == nil && !keyutil.Equal(k.pub, s.Public()) {
		kms.Close()
		err = fmt.Errorf("the token now holds another key as %s", k.uri)
	}
	if err != nil {
		k.tryErr = err
		return err
	}
	k.kms, k.signer, k.tryErr = kms, s, nil
	return nil
}

// Close implements io.Closer.
func (k *TokenKey) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kms == nil {
		return nil
	}
	err := k.kms.Close()
	k.kms, k.signer = nil, nil
	return err
}

// Delete removes the key from the token: pkid init undoes with it a key
// it made for a CA it then failed to write.
func (k *TokenKey) Delete() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	d, ok := k.kms.(interface{ DeleteKey(string) error })
	if !ok {
		return fmt.Errorf("delete the key %s from the token: no session with it", k.uri)
	}
	if err := d.DeleteKey(k.uri); err != nil {
		return fmt.Errorf("delete the key %s from the token: %w", k.uri, err)
	}
	return nil
}

// OpenTokenKey logs in to the token keyURI names (module-path, and token,
// serial or slot-id), with the PIN in its pin-source file, and finds the
// key its object and/or id name.
func OpenTokenKey(ctx context.Context, keyURI string) (*TokenKey, error) {
	kms, s, err := openKey(ctx, keyURI)
	if err != nil {
		return nil, err
	}
	return &TokenKey{uri: keyURI, pub: s.Public(), kms: kms, signer: s}, nil
}

// openKey opens the token and finds the key in it.
func openKey(ctx context.Context, keyURI string) (apiv1.KeyManager, crypto.Signer, error) {
	kms, err := openToken(ctx, keyURI)
	if err != nil {
		return nil, nil, err
	}
	s, err := kms.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: keyURI})
	if err != nil {
		kms.Close()
		return nil, nil, fmt.Errorf("find the key %s in the token: %w", keyURI, err)
	}
	return kms, s, nil
}

// CreateTokenKey generates a key of keyType inside the token keyURI names,
// labelled with its object and id (both required, so the key can be found
// again by either). A key already there under either is never reused or
// replaced: pkid init refuses.
func CreateTokenKey(ctx context.Context, keyURI, keyType string) (*TokenKey, error) {
	req := &apiv1.CreateKeyRequest{Name: keyURI}
	switch keyType {
	case "ec-p256", "":
		req.SignatureAlgorithm = apiv1.ECDSAWithSHA256
	case "ec-p384":
		req.SignatureAlgorithm = apiv1.ECDSAWithSHA384
	case "rsa-2048", "rsa-3072", "rsa-4096":
		req.SignatureAlgorithm = apiv1.SHA256WithRSA
		fmt.Sscanf(strings.TrimPrefix(keyType, "rsa-"), "%d", &req.Bits)
	default:
		return nil, fmt.Errorf("a key in a PKCS#11 token is ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096, not %q (the PKCS#11 library pkid uses has no Ed25519)", keyType)
	}
	u, err := parseKeyURI(keyURI)
	if err != nil {
		return nil, err
	}
	object, id := u.Get("object"), u.Get("id")
	if object == "" || id == "" {
		return nil, fmt.Errorf("key URI %s: a key pkid makes needs both object (its label) and id (its CKA_ID, hex)", keyURI)
	}
	kms, err := openToken(ctx, keyURI)
	if err != nil {
		return nil, err
	}
	// A key under either name would make the URI ambiguous (PKCS#11 finds
	// keys by both, the library by whichever the URI gives).
	for _, name := range []string{"object=" + url.PathEscape(object), "id=" + url.PathEscape(id)} {
		if _, err := kms.GetPublicKey(&apiv1.GetPublicKeyRequest{Name: "pkcs11:" + name}); err == nil {
			kms.Close()
			return nil, fmt.Errorf("the token already holds a key with %s: pkid never reuses or replaces a key it did not make; name another object and id", name)
		}
	}
	if _, err := kms.CreateKey(req); err != nil {
		kms.Close()
		return nil, fmt.Errorf("generate a %s key in the token as %s: %w", keyType, keyURI, err)
	}
	s, err := kms.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: keyURI})
	if err != nil {
		kms.Close()
		return nil, fmt.Errorf("find the key just made as %s: %w", keyURI, err)
	}
	return &TokenKey{uri: keyURI, pub: s.Public(), kms: kms, signer: s}, nil
}

// openToken opens the module and logs in. The PIN is read here rather
// than left to the library, which takes an unreadable pin-source for an
// empty PIN and then reports a wrong one. A URI holding the PIN itself is
// refused, so no message that names a key URI can carry a secret.
func openToken(ctx context.Context, keyURI string) (apiv1.KeyManager, error) {
	u, err := parseKeyURI(keyURI)
	if err != nil {
		return nil, err
	}
	var pin string
	if src := u.Get("pin-source"); src != "" {
		raw, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("read the token PIN: %w", err)
		}
		pin = string(bytes.TrimRight(raw, "\r\n"))
	}
	kms, err := pkcs11.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: keyURI, Pin: pin})
	if err != nil {
		return nil, fmt.Errorf("open the PKCS#11 token of %s: %w", keyURI, err)
	}
	return kms, nil
}

// parseKeyURI parses a pkcs11: URI, refusing one that holds a PIN before
// anything (the parser's own errors quote the URI whole).
func parseKeyURI(keyURI string) (*uri.URI, error) {
	if strings.Contains(keyURI, "pin-value") {
		return nil, errors.New("key URI: pin-value would put the token's PIN in the config and in messages; write it to a file (mode 0600) and name that with pin-source")
	}
	u, err := uri.ParseWithScheme("pkcs11", keyURI)
	if err != nil {
		return nil, fmt.Errorf("key URI: %w", err)
	}
	return u, nil
}
