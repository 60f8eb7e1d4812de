package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.step.sm/crypto/x509util"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// SignRequest is one issuance. Who asked and how they were authorized is
// decided by the caller (api, acme); what may be issued is decided here.
type SignRequest struct {
	Role string
	CSR  *x509.CertificateRequest
	// TTL requested; zero means the role's default.
	TTL time.Duration
	// Requester is recorded and logged: "token:<name>", "acme:<account>"...
	Requester string
	// AuthorizedAt is the time of the last real authorization behind this
	// request (now for a token; the original for a renewal).
	AuthorizedAt time.Time
	// AuthorizedBy is the requester of that authorization when it is not
	// Requester (a renewal: the certificate's first requester), recorded so
	// that listing a leaked credential's certificates finds its renewals.
	AuthorizedBy string
	Via          string
	Replaces     string
	// ExactNames, when not nil, must equal the decided SANs as a set:
	// enrollment tokens, ACME orders and renewals fix the names.
	ExactNames []string
	// Serial, when set, comes from ReserveSerial: the caller recorded it
	// before asking, so after a crash it can tell whether the certificate
	// was committed (ACME finalize). A collision is then an error rather
	// than a retry with another serial, which the caller would not know.
	Serial *big.Int
}

// ReserveSerial returns a fresh serial for SignRequest.Serial.
func (a *Authority) ReserveSerial() (*big.Int, error) {
	return newSerial(a.d.Clock.Now())
}

// Issued is a committed certificate.
type Issued struct {
	Record *store.CertRecord
	// PEM is the leaf; Chain is the intermediate then the root, as the
	// strings a JSON answer carries: made once and shared by every answer,
	// so read-only.
	PEM   []byte
	Chain []string
	Names []string
}

// Check runs every check of Sign that does not sign: the role, the
// policy, bound names and blocked keys. Callers use it before spending a
// single-use credential.
func (a *Authority) Check(ctx context.Context, req *SignRequest) error {
	role, _, dec, _, err := a.decide(ctx, req)
	if err != nil {
		return err
	}
	if err := a.allowance(ctx, role, req, dec, false); err != nil {
		return err
	}
	// Sign leaves this to the commit, which refuses a blocked key in its
	// own transaction; a credential must not be spent on a refusal.
	blocked, err := a.d.Store.KeyBlocked(ctx, KeyHash(req.CSR.RawSubjectPublicKeyInfo))
	if err != nil {
		return fmt.Errorf("check for role %s: %w", req.Role, err)
	}
	if blocked {
		return errKeyBlocked()
	}
	return nil
}

// Sign runs the pipeline: role → policy → template → re-check → sign →
// commit. It returns only after the record is durably committed.
func (a *Authority) Sign(ctx context.Context, req *SignRequest) (*Issued, error) {
	role, rt, dec, keyHash, err := a.decide(ctx, req)
	if err != nil {
		return nil, err
	}
	tmpl, err := a.template(role, rt, dec, req.CSR)
	if err != nil {
		return nil, err
	}
	// Last of the checks, so that only a request that would be signed
	// spends an allowance.
	if err := a.allowance(ctx, role, req, dec, true); err != nil {
		return nil, err
	}
	return a.signAndCommit(ctx, role, tmpl, dec.TTL, req, keyHash, dec.Names())
}

// decide looks the role and its template up in one generation of the
// roles, and evaluates the request against that role.
func (a *Authority) decide(ctx context.Context, req *SignRequest) (*policies.Role, *roleTemplate, *policies.Decision, string, error) {
	if err := a.halt(); err != nil {
		return nil, nil, nil, "", err
	}
	set := a.roles.Load()
	role := set.roles[req.Role]
	if role == nil {
		return nil, nil, nil, "", errUnknownRole(req.Role, set)
	}
	if req.CSR == nil {
		return nil, nil, nil, "", errs.New(errs.BadCSR, "no CSR")
	}
	preq := RequestFromCSR(req.CSR)
	preq.TTL = req.TTL
	dec, err := policies.Evaluate(role, preq)
	if err != nil {
		return nil, nil, nil, "", refusal(err)
	}
	if req.ExactNames != nil {
		if err := sameNames(dec.Names(), req.ExactNames); err != nil {
			return nil, nil, nil, "", err
		}
	}
	return role, set.templates[req.Role], dec, KeyHash(req.CSR.RawSubjectPublicKeyInfo), nil
}

func errUnknownRole(name string, set *roleSet) error {
	return errs.New(errs.NotFound, "unknown role %q (known: %s)", name, strings.Join(set.names(), ", "))
}

func errKeyBlocked() error {
	return errs.New(errs.Forbidden, "this public key belongs to a certificate revoked for keyCompromise; generate a new key")
}

// refusal turns a policy rejection into the CA's error kinds: names only
// → RejectedIdentifier (ACME's rejectedIdentifier), anything else Forbidden.
func refusal(err error) error {
	var rej *policies.Rejection
	if errors.As(err, &rej) && rej.OnlyNames() {
		return errs.Wrap(errs.RejectedIdentifier, err, "%s", rej.Error())
	}
	return errs.Wrap(errs.Forbidden, err, "%s", err.Error())
}

func sameNames(got, want []string) error {
	g := slices.Clone(got)
	w := make([]string, len(want))
	for i, n := range want {
		w[i] = policies.RecordedName(n)
	}
	slices.Sort(g)
	slices.Sort(w)
	g, w = slices.Compact(g), slices.Compact(w)
	if !slices.Equal(g, w) {
		return errs.New(errs.Forbidden, "the request names %s but exactly %s are allowed here", strings.Join(g, ", "), strings.Join(w, ", "))
	}
	return nil
}

// template builds the unsigned certificate from the decision only: the
// CSR contributes its public key and nothing else. rt is the role's
// x509util template, or nil for the built-in layout.
func (a *Authority) template(role *policies.Role, rt *roleTemplate, dec *policies.Decision, csr *x509.CertificateRequest) (*x509.Certificate, error) {
	if rt != nil {
		c, err := rt.certificate(csr, x509util.CreateTemplateData(dec.CommonName, dec.Names()))
		if err != nil {
			var te *x509util.TemplateError
			if errors.As(err, &te) {
				return nil, errs.Wrap(errs.Forbidden, err, "role template refused the request: %s", te.Message)
			}
			return nil, fmt.Errorf("template of role %s: %w", role.Name, err)
		}
		return c, nil
	}
	c := &x509util.Certificate{
		Subject:            x509util.Subject{CommonName: dec.CommonName},
		DNSNames:           dec.DNSNames,
		IPAddresses:        dec.IPAddresses,
		URIs:               dec.URIs,
		EmailAddresses:     dec.Emails,
		KeyUsage:           x509util.KeyUsage(dec.KeyUsage),
		ExtKeyUsage:        x509util.ExtKeyUsage(dec.ExtKeyUsage),
		PublicKey:          csr.PublicKey,
		PublicKeyAlgorithm: csr.PublicKeyAlgorithm,
	}
	return c.GetCertificate(), nil
}

// signAndCommit sets serial, validity and pointers, re-checks, signs and
// commits. A serial collision (2^-128) re-signs with a new serial rather
// than ever reusing one.
func (a *Authority) signAndCommit(ctx context.Context, role *policies.Role, tmpl *x509.Certificate, ttl time.Duration, req *SignRequest, keyHash string, names []string) (*Issued, error) {
	now := a.d.Clock.Now().UTC().Truncate(time.Second)
	tmpl.NotBefore = now.Add(-policies.Backdate)
	// Certificate times are whole seconds: a TTL of 90.5s would otherwise
	// answer and record a notAfter the certificate does not carry.
	tmpl.NotAfter = now.Add(ttl).Truncate(time.Second)
	if tmpl.NotAfter.After(a.d.Intermediate.NotAfter) {
		tmpl.NotAfter = a.d.Intermediate.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	var err error
	if tmpl.SubjectKeyId, err = subjectKeyID(req.CSR); err != nil {
		return nil, errs.Wrap(errs.BadCSR, err, "unsupported public key")
	}
	if role.Pointers() && a.crlURL != "" {
		tmpl.CRLDistributionPoints = []string{a.crlURL}
		tmpl.OCSPServer = []string{a.ocspURL}
		tmpl.IssuingCertificateURL = []string{a.aiaURL}
	}
	if err := policies.CheckCertificate(role, tmpl); err != nil {
		return nil, errs.Wrap(errs.Forbidden, err, "%s", err.Error())
	}
	if why := policies.OutsideConstraints(a.d.Intermediate, tmpl); why != "" {
		return nil, errs.New(errs.Forbidden, "role %q allows the name, but %s: no client would accept the certificate", role.Name, why)
	}
	if err := a.withFixedExtensions(tmpl); err != nil {
		return nil, fmt.Errorf("sign for role %s: %w", role.Name, err)
	}
	authAt := req.AuthorizedAt
	if authAt.IsZero() {
		authAt = now
	}
	for range 3 {
		tmpl.SerialNumber = req.Serial
		if req.Serial == nil {
			// The clock itself, not now (truncated to the second for the
			// validity): the serial's millisecond prefix is what keeps the
			// serials of one commit on the index's last page.
			if tmpl.SerialNumber, err = newSerial(a.d.Clock.Now()); err != nil {
				return nil, err
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, a.d.Intermediate, tmpl.PublicKey, a.d.Signer)
		if err != nil {
			return nil, fmt.Errorf("sign for role %s: %w", role.Name, err)
		}
		rec := &store.CertRecord{
			Serial: SerialString(tmpl.SerialNumber), Issuer: a.issuerID, Role: role.Name,
			Names: names, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, DER: der,
			KeyHash: keyHash, Status: store.StatusValid, Requester: req.Requester,
			AuthorizedAt: authAt, AuthorizedBy: req.AuthorizedBy, Via: req.Via, Replaces: req.Replaces, CreatedAt: now,
		}
		err = a.d.Store.InsertCertificate(ctx, rec)
		switch {
		case errors.Is(err, store.ErrDuplicate) && req.Serial != nil:
			return nil, fmt.Errorf("commit %s: the reserved serial is taken: %w", rec.Serial, err)
		case errors.Is(err, store.ErrDuplicate):
			continue
		case errors.Is(err, store.ErrKeyBlocked):
			return nil, errKeyBlocked()
		case errors.Is(err, store.ErrReplacedRevoked):
			return nil, errs.New(errs.Unauthorized, "certificate %s was revoked while it was being renewed", req.Replaces)
		}
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", rec.Serial, err)
		}
		a.issued.run(rec)
		return &Issued{Record: rec, PEM: PEMCert(der), Chain: a.chain, Names: names}, nil
	}
	return nil, errors.New("sign: three serial collisions in a row; the random source is broken")
}

// KeyHash is the hex SHA-256 of a SubjectPublicKeyInfo.
func KeyHash(spki []byte) string {
	h := sha256.Sum256(spki)
	return hex.EncodeToString(h[:])
}

// PublicKeyHash is KeyHash of pub's SubjectPublicKeyInfo: what a
// keyCompromise revocation blocks, for a key that is not at hand as DER
// (an ACME account's JWK, say).
func PublicKeyHash(pub crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key hash: %w", err)
	}
	return KeyHash(spki), nil
}

// IssueRequest asks the CA to make the key too, for clients that cannot
// make a CSR.
type IssueRequest struct {
	SignRequest
	KeyType     string
	CommonName  string
	DNSNames    []string
	IPAddresses []net.IP
	URIs        []string
	// Emails are mailbox SANs, for roles with allowed_email_domains.
	Emails []string
}

// Issue generates a key of the requested type, makes a request for the
// names and signs it through the same pipeline as Sign.
func (a *Authority) Issue(ctx context.Context, req *IssueRequest) (*Issued, crypto.Signer, error) {
	sr, key, err := a.PrepareIssue(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	iss, err := a.Sign(ctx, sr)
	if err != nil {
		return nil, nil, err
	}
	return iss, key, nil
}

// PrepareIssue makes the key and the (unsigned) request of an
// IssueRequest, giving the SignRequest that Sign will take.
func (a *Authority) PrepareIssue(ctx context.Context, req *IssueRequest) (*SignRequest, crypto.Signer, error) {
	if err := a.halt(); err != nil {
		return nil, nil, err
	}
	set := a.roles.Load()
	role := set.roles[req.Role]
	if role == nil {
		return nil, nil, errUnknownRole(req.Role, set)
	}
	kt := req.KeyType
	if kt == "" {
		// P-256 where the role allows it, as most clients expect;
		// otherwise the first key type the role names, rather than a
		// refusal of a key the caller did not ask for.
		kt = "ec-p256"
		if !slices.Contains(role.KeyTypes, kt) && len(role.KeyTypes) > 0 {
			kt = role.KeyTypes[0]
		}
	}
	if !slices.Contains(policies.KnownKeyTypes, kt) {
		return nil, nil, errs.New(errs.Malformed, "key_type %q is not one of %s", kt, strings.Join(policies.KnownKeyTypes, ", "))
	}
	if !slices.Contains(role.KeyTypes, kt) {
		return nil, nil, errs.New(errs.Forbidden, "key_type %s is not allowed by role %q (allowed: %s)", kt, role.Name, strings.Join(role.KeyTypes, ", "))
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: req.CommonName}, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses, EmailAddresses: req.Emails}
	// Here the common name is "the" name of the certificate, as in Vault's
	// issue endpoint: it joins the SANs rather than having to repeat one.
	if cn := req.CommonName; cn != "" {
		switch ip := net.ParseIP(cn); {
		case ip != nil:
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		case strings.Contains(cn, "://"):
		case strings.Contains(cn, "@"):
			if !slices.Contains(tmpl.EmailAddresses, cn) {
				tmpl.EmailAddresses = append(tmpl.EmailAddresses, cn)
			}
		case !slices.Contains(tmpl.DNSNames, cn):
			tmpl.DNSNames = append(tmpl.DNSNames, cn)
		}
	}
	for _, u := range req.URIs {
		pu, err := parseURI(u)
		if err != nil {
			return nil, nil, err
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	// Check names and TTL before paying for a key (RSA-4096 takes
	// seconds): the policy looks only at the key's type, so a stand-in of
	// the same type serves.
	pre := &policies.Request{CommonName: tmpl.Subject.CommonName, DNSNames: tmpl.DNSNames, URIs: tmpl.URIs, Emails: tmpl.EmailAddresses, PublicKey: standIn(kt), TTL: req.TTL}
	ips := make([]net.IP, 0, len(tmpl.IPAddresses))
	for _, ip := range tmpl.IPAddresses {
		if v4 := ip.To4(); v4 != nil {
			ip = v4 // as crypto/x509 will encode it
		}
		ips = append(ips, ip)
		if a, ok := netip.AddrFromSlice(ip); ok {
			pre.IPAddresses = append(pre.IPAddresses, a)
		}
	}
	dec, err := policies.Evaluate(role, pre)
	if err != nil {
		return nil, nil, refusal(err)
	}
	if req.ExactNames != nil {
		if err := sameNames(dec.Names(), req.ExactNames); err != nil {
			return nil, nil, err
		}
	}
	// Nor make a key for a credential that has used up its allowance.
	if err := a.allowance(ctx, role, &req.SignRequest, dec, false); err != nil {
		return nil, nil, err
	}
	// At most one key generation per core at a time: an RSA-4096 key costs
	// seconds, and a burst of them must not starve signing. A request
	// whose client gives up while it waits (a timeout, a cancelled CI job)
	// leaves the queue instead of having a key made for nobody.
	select {
	case a.keygen <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, errs.Wrap(errs.Unavailable, ctx.Err(), "the request ended while it waited for a key to be made (%s; %d at a time here)", kt, cap(a.keygen))
	}
	key, err := GenerateKey(kt)
	<-a.keygen
	if err != nil {
		return nil, nil, err
	}
	// The key is the CA's own making, so the request is built as a
	// renewal's is, not signed and parsed back: x509.CreateCertificateRequest
	// signs and then verifies its own signature, two public-key operations
	// (~0.1 ms for P-256, milliseconds for RSA) that prove nothing here.
	pub := key.Public()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: %w", err)
	}
	csr := &x509.CertificateRequest{
		Subject: tmpl.Subject, DNSNames: tmpl.DNSNames, IPAddresses: ips, URIs: tmpl.URIs, EmailAddresses: tmpl.EmailAddresses,
		PublicKey: pub, PublicKeyAlgorithm: publicKeyAlgorithm(pub), RawSubjectPublicKeyInfo: spki,
	}
	sr := req.SignRequest
	sr.CSR = csr
	return &sr, key, nil
}
