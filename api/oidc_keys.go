package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/errs"
)

// keyRefetchGap is how long after fetching an issuer's key set pkid waits
// before fetching it again for a token that names a key it does not hold.
// Issuers publish a new key before they sign with it, so a real rotation
// is seen at the first token of the new key; a stream of tokens with
// made-up key ids costs the issuer one fetch per gap.
const keyRefetchGap = 30 * time.Second

// maxJWKS bounds a key set's size (a few keys are a few KiB).
const maxJWKS = 1 << 20

// issuerKeys is an OIDC issuer's published signing keys (its JWKS), kept
// for oidc.IDTokenVerifier. go-oidc's own RemoteKeySet fetches the set
// again for every token it cannot verify with the keys it holds, while
// the request waits: anyone who can reach pkid could make it fetch from
// the issuer (GitHub, GitLab) once per request. issuerKeys fetches only
// in prepare, before verification, at most once per keyRefetchGap for an
// unknown key, and reports an issuer it cannot reach as Unavailable (the
// token is not at fault); VerifySignature uses only the keys it holds.
type issuerKeys struct {
	url  string
	hc   *http.Client
	now  func() time.Time
	algs []jose.SignatureAlgorithm

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	tried    time.Time     // when the last fetch ended
	err      error         // how it failed, or nil
	inflight chan struct{} // closed when the running fetch ends
}

// prepare fetches the key set if the token raw needs a key not held and
// fetching may help: none held yet, or raw names a key id not in the set
// and the last fetch is keyRefetchGap old. A failed fetch, while no key
// for raw is held, is Unavailable with the time to retry. A token that is
// not a JWS is left to VerifySignature to refuse.
func (k *issuerKeys) prepare(ctx context.Context, raw string) error {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil
	}
	kid := jws.Signatures[0].Header.KeyID
	for {
		k.mu.Lock()
		if k.holds(kid) {
			k.mu.Unlock()
			return nil
		}
		ch := k.inflight
		if ch == nil {
			if since := k.now().Sub(k.tried); !k.tried.IsZero() && since < keyRefetchGap {
				// Fetched lately (perhaps just now, for this token): the
				// key is not published, or the issuer could not be reached.
				fetchErr := k.err
				k.mu.Unlock()
				if fetchErr == nil {
					return nil // VerifySignature names the unknown key id
				}
				e := errs.New(errs.Unavailable, "the OIDC issuer's keys (%s) could not be fetched, so the token cannot be checked: %v", k.url, fetchErr)
				e.RetryAfter = max(keyRefetchGap-since, time.Second)
				return e
			}
			ch = make(chan struct{})
			k.inflight = ch
			// The fetch is the issuer's, not this request's: a client that
			// goes away must not cancel it for the others waiting.
			go k.fetch(ch)
		}
		k.mu.Unlock()
		select {
		case <-ctx.Done():
			return errs.Wrap(errs.Unavailable, ctx.Err(), "gave up waiting for the OIDC issuer's keys")
		case <-ch:
		}
	}
}

// holds reports whether a key for kid is held ("" asks for any key, as a
// token without a kid may be signed by any of them). k.mu is held.
func (k *issuerKeys) holds(kid string) bool {
	for _, key := range k.keys {
		if kid == "" || key.KeyID == kid {
			return true
		}
	}
	return false
}

func (k *issuerKeys) fetch(done chan struct{}) {
	keys, err := k.download()
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.keys = keys
	}
	k.err, k.tried, k.inflight = err, k.now(), nil
	close(done)
}

// download reads the key set, keeping the public signing keys go-jose
// understands and skipping the others (a set may hold encryption keys or
// key types newer than this build) rather than refusing every token.
func (k *issuerKeys) download() ([]jose.JSONWebKey, error) {
	req, err := http.NewRequest(http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Cache-Control", "no-cache") // a cache in between must not hide a new key
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", k.url, maxJWKS)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON key set: %w", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if json.Unmarshal(raw, &key) != nil || !key.IsPublic() || !key.Valid() || key.Use == "enc" {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: no public signing key in the key set", k.url)
	}
	return keys, nil
}

// VerifySignature implements oidc.KeySet with the keys held, trying those
// with the token's key id (every key if it names none).
func (k *issuerKeys) VerifySignature(_ context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	named := false
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		named = true
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, nil
		}
	}
	if !named {
		return nil, fmt.Errorf("signed with key id %q, which the issuer does not publish", kid)
	}
	return nil, errors.New("the signature does not verify with the issuer's key")
}
