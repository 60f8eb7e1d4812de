package acme

import "context"

// multiValidator dispatches each challenge type to its validator.
type multiValidator map[string]Validator

// NewValidator returns the validator for every challenge type pkid
// supports, all looking names up through r.
func NewValidator(r *Resolver, httpPort, tlsPort int) Validator {
	return multiValidator{
		"http-01":     &HTTPValidator{Resolver: r, HTTPPort: httpPort, TLSPort: tlsPort},
		"dns-01":      &DNSValidator{Resolver: r},
		"tls-alpn-01": &TLSALPNValidator{Resolver: r, Port: tlsPort},
	}
}

// Supports implements Validator.
func (m multiValidator) Supports(t string) bool { _, ok := m[t]; return ok }

// Validate implements Validator.
func (m multiValidator) Validate(ctx context.Context, c Challenge) error {
	v, ok := m[c.Type]
	if !ok {
		return malformed("challenge type " + c.Type + " is not supported")
	}
	return v.Validate(ctx, c)
}
