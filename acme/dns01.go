package acme

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// DNSValidator validates dns-01 (RFC 8555 §8.4): a TXT record at
// _acme-challenge.<name> holding base64url(SHA-256(key authorization)),
// looked up through the configured resolver on every attempt (Resolver
// never caches, and asks again over TCP when an answer is truncated).
type DNSValidator struct{ Resolver *Resolver }

// Supports implements Validator.
func (v *DNSValidator) Supports(t string) bool { return t == "dns-01" }

// Validate implements Validator.
func (v *DNSValidator) Validate(ctx context.Context, c Challenge) error {
	if c.Identifier.Type != "dns" {
		return malformed("dns-01 validates DNS names only")
	}
	name := "_acme-challenge." + strings.TrimPrefix(c.Identifier.Value, "*.")
	sum := sha256.Sum256([]byte(c.KeyAuth))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	txts, err := v.Resolver.LookupTXT(ctx, name)
	if err != nil {
		return dnsProblem(fmt.Sprintf("TXT lookup of %s: %v", name, err))
	}
	for _, t := range txts {
		if strings.TrimSpace(t) == want {
			return nil
		}
	}
	return unauthorized(fmt.Sprintf("no TXT record at %s holds %q (found %d other value(s))", name, want, len(txts)))
}
