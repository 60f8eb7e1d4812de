package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// oidcVerifiers caches one verifier per trust (issuer, audience, CA file),
// so a role reloaded with the same trust keeps its verifier and one with
// a changed trust gets a new one. go-oidc's remote key set refetches the
// JWKS when a token names an unknown key, so a key rotated at the issuer
// is picked up without a restart.
type oidcVerifiers struct {
	mu sync.Mutex
	m  map[string]*oidc.IDTokenVerifier
}

func looksLikeJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

func (o *oidcVerifiers) get(role *policies.Role) (*oidc.IDTokenVerifier, error) {
	key := role.OIDC.Issuer + "\x00" + role.OIDC.Audience + "\x00" + role.OIDC.CAFile
	o.mu.Lock()
	defer o.mu.Unlock()
	if v := o.m[key]; v != nil {
		return v, nil
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if role.OIDC.CAFile != "" {
		raw, err := os.ReadFile(role.OIDC.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oidc ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(raw)
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	// The provider keeps this context for later JWKS fetches: it must not
	// be a request's.
	ctx := oidc.ClientContext(context.Background(), hc)
	p, err := oidc.NewProvider(ctx, role.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery of %s: %w", role.OIDC.Issuer, err)
	}
	v := p.Verifier(&oidc.Config{ClientID: role.OIDC.Audience, SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.ES384, oidc.PS256, oidc.EdDSA}})
	if o.m == nil {
		o.m = map[string]*oidc.IDTokenVerifier{}
	}
	o.m[key] = v
	return v, nil
}

// authenticateOIDC verifies a CI OIDC token for role and checks the role's
// claim conditions. The principal it returns may use only that role.
func (s *Server) authenticateOIDC(ctx context.Context, role *policies.Role, raw string) (*store.Token, map[string]string, error) {
	if role.OIDC == nil {
		return nil, nil, errs.New(errs.Unauthorized, "role %q does not accept OIDC tokens; use an API token", role.Name)
	}
	v, err := s.oidc.get(role)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, err, "oidc")
	}
	tok, err := v.Verify(ctx, raw)
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
