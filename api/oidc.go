package api

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// discoveryRetry is how long a failed discovery of an issuer stands
// before a token for it makes pkid ask the issuer again: while it stands,
// tokens are refused at once with 503 and Retry-After, rather than each
// waiting on an issuer that is down.
const discoveryRetry = 10 * time.Second

// oidcAlgs are the token signature algorithms a role accepts, as go-jose
// names them (issuerKeys parses with them) and as go-oidc's Config takes
// them.
var (
	oidcAlgs        = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.PS256, jose.EdDSA}
	oidcSigningAlgs = func() []string {
		s := make([]string, len(oidcAlgs))
		for i, a := range oidcAlgs {
			s[i] = string(a)
		}
		return s
	}()
)

// oidcVerifiers holds one trust per (issuer, audience, CA roots), so a role
// reloaded with the same trust keeps its verifier and keys, and one with a
// changed trust gets new ones. Discovery runs outside the lock: an issuer
// that is slow to answer holds up only the tokens for it.
type oidcVerifiers struct {
	mu sync.Mutex
	m  map[string]*oidcTrust
}

// oidcTrust is one issuer's discovery, done once (again after a failure,
// once discoveryRetry has passed). Its fields are set before ready closes.
type oidcTrust struct {
	ready chan struct{}
	v     *oidc.IDTokenVerifier
	keys  *issuerKeys
	err   error
	at    time.Time // when discovery ended
}

func looksLikeJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

// get returns the trust for role, starting its discovery if none is
// running or done, or if the last one failed discoveryRetry ago, and
// waiting for it as long as ctx allows.
func (o *oidcVerifiers) get(ctx context.Context, role *policies.Role, now func() time.Time) (*oidcTrust, error) {
	trust := *role.OIDC
	roots := sha256.Sum256(trust.CAPEM)
	key := trust.Issuer + "\x00" + trust.Audience + "\x00" + string(roots[:])
	o.mu.Lock()
	t := o.m[key]
	if t != nil {
		select {
		case <-t.ready:
			if t.err != nil && now().Sub(t.at) >= discoveryRetry {
				t = nil
			}
		default:
		}
	}
	if t == nil {
		t = &oidcTrust{ready: make(chan struct{})}
		if o.m == nil {
			o.m = map[string]*oidcTrust{}
		}
		o.m[key] = t
		go t.discover(trust, now)
	}
	o.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, errs.Wrap(errs.Unavailable, ctx.Err(), "gave up waiting for the OIDC issuer %s", trust.Issuer)
	case <-t.ready:
	}
	if t.err != nil {
		var e *errs.Error
		if errors.As(t.err, &e) {
			return nil, e
		}
		e = errs.New(errs.Unavailable, "the OIDC issuer %s could not be asked for its configuration, so the token cannot be checked: %v", trust.Issuer, t.err)
		e.RetryAfter = max(discoveryRetry-now().Sub(t.at), time.Second)
		return nil, e
	}
	return t, nil
}

// discover reads the issuer's discovery document and sets up the
// verifier. Its context is not a request's: the trust outlives the
// request that asked first, and the key fetches later use its client.
func (t *oidcTrust) discover(trust policies.OIDCTrust, now func() time.Time) {
	defer close(t.ready)
	defer func() { t.at = now() }()
	hc := &http.Client{Timeout: 10 * time.Second}
	if len(trust.CAPEM) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(trust.CAPEM) // config.ReadRoots checked it
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}
	}
	p, err := oidc.NewProvider(oidc.ClientContext(context.Background(), hc), trust.Issuer)
	if err != nil {
		t.err = err
		return
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		t.err = fmt.Errorf("its discovery document names no jwks_uri")
		return
	}
	t.keys = &issuerKeys{url: meta.JWKS, hc: hc, now: now, algs: oidcAlgs}
	t.v = oidc.NewVerifier(trust.Issuer, t.keys, &oidc.Config{ClientID: trust.Audience, SupportedSigningAlgs: oidcSigningAlgs, Now: now})
}

// authenticateOIDC verifies a CI OIDC token for role and checks the role's
// claim conditions. The principal it returns may use only that role.
func (s *Server) authenticateOIDC(ctx context.Context, role *policies.Role, raw string) (*store.Token, map[string]string, error) {
	if role.OIDC == nil {
		return nil, nil, errs.New(errs.Unauthorized, "role %q does not accept OIDC tokens; use an API token", role.Name)
	}
	t, err := s.oidc.get(ctx, role, s.opts.Clock.Now)
	if err != nil {
		return nil, nil, err
	}
	if err := t.keys.prepare(ctx, raw); err != nil {
		return nil, nil, err
	}
	tok, err := t.v.Verify(ctx, raw)
	if err != nil {
		return nil, nil, errs.New(errs.Unauthorized, "OIDC token refused: %s", oidcReason(err))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, nil, errs.New(errs.Unauthorized, "OIDC token claims do not parse")
	}
	used, err := policies.MatchClaims(role.OIDC, claims)
	if err != nil {
		return nil, nil, errs.New(errs.Forbidden, "OIDC token of %s does not match role %q: %v", tok.Subject, role.Name, err)
	}
	used["iss"], used["sub"] = tok.Issuer, tok.Subject
	return &store.Token{Name: "oidc:" + tok.Subject, Roles: []string{role.Name}}, used, nil
}

// oidcReason shortens go-oidc's errors to what a CI user needs.
func oidcReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "oidc: ")
	var exp *oidc.TokenExpiredError
	if errors.As(err, &exp) {
		return "token expired at " + exp.Expiry.UTC().Format(time.RFC3339)
	}
	return msg
}
