package acme

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/ca"
	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// allowedAlgs are the outer-JWS algorithms; HS* and none never verify an
// account request (RFC 8555 §6.2).
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.EdDSA}

// keyMode says how a resource authenticates its requests.
type keyMode int

const (
	kidOnly keyMode = iota
	jwkOnly
	kidOrJWK
)

// request is a verified ACME POST.
type request struct {
	role      string         // from the URL: /acme/{role}/...
	rl        *policies.Role // its policy; common has checked it exists and allows ACME
	payload   []byte
	postAsGet bool
	jwk       *jose.JSONWebKey
	account   *store.ACMEAccount // nil for jwk-authenticated requests
}

// thumbprint is the RFC 7638 SHA-256 thumbprint in base64url.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(cryptoSHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// verify runs the JWS checks in order: content type → parse (one
// signature, an allowed alg) → url → nonce → key (jwk or kid) → signature.
func (s *Server) verify(r *http.Request, mode keyMode) (*request, error) {
	role, rl := s.roleOf(r)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/jose+json" {
		p := malformed("Content-Type must be application/jose+json")
		p.Status = http.StatusUnsupportedMediaType
		return nil, p
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// An oversize body is a MaxBytesError under this: errs takes it as
		// TooLarge, answered 413.
		return nil, errs.Wrap(errs.Malformed, err, "cannot read the request body: %v", err)
	}
	var raw struct {
		Protected  string          `json:"protected"`
		Payload    *string         `json:"payload"`
		Signature  string          `json:"signature"`
		Header     json.RawMessage `json:"header"`
		Signatures json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, malformed("body is not a flattened JWS JSON object: " + err.Error())
	}
	if raw.Signatures != nil {
		return nil, malformed("JWS must use the flattened JSON serialization with exactly one signature")
	}
	if raw.Header != nil {
		return nil, malformed("JWS has an unprotected header; ACME allows only the protected one (RFC 8555 §6.2)")
	}
	if raw.Payload == nil {
		return nil, malformed(`JWS has no "payload" member (a POST-as-GET sends "payload": "")`)
	}
	hdrJSON, err := base64.RawURLEncoding.DecodeString(raw.Protected)
	if err != nil {
		return nil, malformed("protected header is not base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return nil, malformed("protected header is not JSON")
	}
	if !algAllowed(hdr.Alg) {
		return nil, badSignatureAlgorithm(hdr.Alg)
	}
	// go-jose takes the three parts, already decoded from the JSON here, as
	// a compact JWS: the same header checks and signing input, without a
	// second decoding of the whole body in go-jose's slower JSON decoder
	// (half of its parse time). Any '.' inside a part makes four parts,
	// which go-jose refuses.
	jws, err := jose.ParseSignedCompact(raw.Protected+"."+*raw.Payload+"."+raw.Signature, allowedAlgs)
	if err != nil {
		return nil, malformed("JWS does not parse: " + err.Error())
	}
	if len(jws.Signatures) != 1 {
		return nil, malformed("JWS must carry exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if u, _ := h.ExtraHeaders["url"].(string); u != s.requestURL(r) {
		return nil, unauthorized(fmt.Sprintf("protected header url %q does not match the request URL %q", u, s.requestURL(r)))
	}
	if h.Nonce == "" {
		return nil, badNonce("JWS has no nonce; get one from newNonce")
	}
	if !s.d.Nonces.Use(h.Nonce) {
		return nil, badNonce("nonce is unknown, used or expired; retry with the Replay-Nonce of this response")
	}
	req := &request{role: role, rl: rl}
	switch {
	case h.JSONWebKey != nil && h.KeyID != "":
		return nil, malformed("JWS has both jwk and kid; send exactly one")
	case h.JSONWebKey != nil:
		if mode == kidOnly {
			return nil, malformed("this resource takes a kid (account URL), not a jwk")
		}
		if err := checkKey(h.JSONWebKey); err != nil {
			return nil, err
		}
		req.jwk = h.JSONWebKey
	case h.KeyID != "":
		if mode == jwkOnly {
			return nil, malformed("this resource takes a jwk, not a kid")
		}
		acct, err := s.accountFromKID(r, role, h.KeyID)
		if err != nil {
			return nil, err
		}
		key, err := s.keys.get(acct)
		if err != nil {
			return nil, serverInternal("stored account key does not parse")
		}
		if err := s.accountKeyNotBlocked(r.Context(), key.hash); err != nil {
			return nil, err
		}
		req.jwk, req.account = key.jwk, acct
	default:
		return nil, malformed("JWS has neither jwk nor kid")
	}
	payload, err := jws.Verify(req.jwk)
	if err != nil {
		return nil, malformed("JWS signature does not verify with the account key")
	}
	req.payload = payload
	req.postAsGet = len(payload) == 0
	return req, nil
}

func algAllowed(alg string) bool {
	for _, a := range allowedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// checkKey accepts public EC P-256/P-384, Ed25519 and RSA ≥ 2048 keys.
func checkKey(k *jose.JSONWebKey) error {
	if !k.Valid() || !k.IsPublic() {
		return badPublicKey("jwk is not a valid public key")
	}
	switch pk := k.Key.(type) {
	case *ecdsa.PublicKey:
		if n := pk.Curve.Params().Name; n != "P-256" && n != "P-384" {
			return badPublicKey("EC keys must be P-256 or P-384, not " + n)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return badPublicKey(fmt.Sprintf("RSA account key of %d bits is too small (minimum 2048)", pk.N.BitLen()))
		}
	default:
		return badPublicKey(fmt.Sprintf("unsupported key type %T", k.Key))
	}
	return nil
}

func (s *Server) accountFromKID(r *http.Request, role, kid string) (*store.ACMEAccount, error) {
	prefix := s.link.account(role, "")
	id, ok := strings.CutPrefix(kid, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, accountDoesNotExist(fmt.Sprintf("kid %q is not an account URL of this directory", kid))
	}
	acct, err := s.d.Store.GetAccount(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Role != role) {
		return nil, accountDoesNotExist("no account " + kid)
	}
	if err != nil {
		return nil, err
	}
	if acct.Status != store.ACMEValid {
		return nil, unauthorized("account is " + acct.Status)
	}
	return acct, nil
}

// requestURL is the URL the client must have signed, query included
// (RFC 8555 §6.4: the exact URL; the orders list's pages differ only in
// theirs).
func (s *Server) requestURL(r *http.Request) string {
	if r.URL.RawQuery != "" {
		return s.externalURL + r.URL.EscapedPath() + "?" + r.URL.RawQuery
	}
	return s.externalURL + r.URL.EscapedPath()
}

// keyCache keeps parsed account keys by thumbprint: parsing a stored JWK
// costs more than the store read itself, and a key never changes under its
// thumbprint (a rollover gives a new one), so a cached entry cannot be
// stale. Bounded by dropping everything when full.
type keyCache struct {
	mu sync.Mutex
	m  map[string]*accountKey
}

// accountKey is an account's parsed key and its ca.KeyHash, which a
// keyCompromise revocation blocks: both follow from the stored JWK alone,
// so they are the same on every replica and harmless to lose.
type accountKey struct {
	jwk  *jose.JSONWebKey
	hash string
}

const keyCacheMax = 100_000

func (c *keyCache) get(acct *store.ACMEAccount) (*accountKey, error) {
	c.mu.Lock()
	k := c.m[acct.KeyThumbprint]
	c.mu.Unlock()
	if k != nil {
		return k, nil
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(acct.JWK); err != nil {
		return nil, err
	}
	hash, err := ca.PublicKeyHash(jwk.Key)
	if err != nil {
		return nil, err
	}
	k = &accountKey{jwk: &jwk, hash: hash}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		c.m = map[string]*accountKey{}
	}
	c.m[acct.KeyThumbprint] = k
	c.mu.Unlock()
	return k, nil
}
