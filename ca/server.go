package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"time"

	"pkid/policies"
	"pkid/store"
)

// ServerRole is the record role of pkid's own TLS certificates, which are
// issued outside any configured role.
const ServerRole = "_server"

// OCSPRole is the record role of a delegated OCSP responder certificate.
const OCSPRole = "_ocsp"

// OwnRole reports whether role is one of pkid's own (ServerRole,
// OCSPRole): configured role names cannot start with '_' (config refuses
// them), so a certificate under one is pkid's, an administrator's to
// revoke.
func OwnRole(role string) bool { return strings.HasPrefix(role, "_") }

// IssueServerCertificate issues pkid's own TLS certificate for exactly the
// configured names, recorded like any other so it can be listed and
// revoked. It passes the same final checks as a leaf of a role that allows
// exactly those names.
func (a *Authority) IssueServerCertificate(ctx context.Context, dnsNames []string, ips []net.IP, ttl time.Duration, key crypto.Signer) (*Issued, error) {
	role := &policies.Role{
		Name: ServerRole, AllowedDomains: dnsNames, AllowBareDomains: true,
		DefaultTTL: ttl, MaxTTL: ttl, KeyTypes: policies.KnownKeyTypes,
		ExtKeyUsage: []string{"server_auth"},
	}
	for _, ip := range ips {
		a, _ := netip.AddrFromSlice(ip)
		a = a.Unmap()
		role.AllowedIPRanges = append(role.AllowedIPRanges, netip.PrefixFrom(a, a.BitLen()))
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dnsNames, IPAddresses: ips}, key)
	if err != nil {
		return nil, fmt.Errorf("server certificate request: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("server certificate request: %w", err)
	}
	preq := RequestFromCSR(csr)
	dec, err := policies.Evaluate(role, preq)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	tmpl, err := a.template(role, nil, dec, csr)
	if err != nil {
		return nil, err
	}
	return a.signAndCommit(ctx, role, tmpl, ttl, &SignRequest{CSR: csr, Requester: "pkid:server", Via: store.ViaServer}, KeyHash(csr.RawSubjectPublicKeyInfo), dec.Names())
}

// ReplaceAt is when a certificate pkid uses itself (its TLS certificate,
// the delegated OCSP responder's) must be replaced: at renewAt, or at once
// if its record is revoked or it is not yet valid on the clock. Both are
// recorded like any other certificate, so an admin may revoke one whose
// key leaked, through any replica sharing the store; pkid then stops using
// that key within a tick instead of at its scheduled renewal, and TLS
// clients that check the CRL or OCSP are not refused meanwhile. A record
// that cannot be read leaves renewAt.
func (a *Authority) ReplaceAt(ctx context.Context, serial *big.Int, renewAt time.Time, what string) time.Time {
	sn := SerialString(serial)
	rec, err := a.d.Store.GetCertificate(ctx, sn)
	if err != nil {
		a.d.Log.Error(what+": cannot read its record to see whether it is revoked", "serial", sn, "err", err)
		return renewAt
	}
	if rec.Status == store.StatusRevoked {
		a.d.Log.Warn(what+" is revoked; replacing it", "serial", sn, "reason", rec.Reason)
		return time.Time{}
	}
	// Signed while the clock was ahead (it has since been stepped back):
	// clients with a right clock refuse it as not yet valid, and its
	// renewal time, reckoned on that clock, is as far off.
	if now := a.d.Clock.Now(); now.Before(rec.NotBefore) {
		a.d.Log.Warn(what+" is valid only from "+rec.NotBefore.UTC().Format(time.RFC3339)+", after this clock's reading: the clock was ahead when it was signed; replacing it", "serial", sn, "clock", now.UTC().Format(time.RFC3339))
		return time.Time{}
	}
	return renewAt
}
