package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.step.sm/crypto/keyutil"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// Deps is what an Authority needs; New validates it.
type Deps struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	// Signer is the intermediate's key: any crypto.Signer, so a KMS or HSM
	// can take the place of the file key.
	Signer crypto.Signer
	Roles  map[string]*policies.Role
	// Templates maps role name to x509util template text, for roles that
	// name one.
	Templates map[string]string
	Store     store.Store
	Clock     Clock
	// PointersURL is the plain-HTTP base of CRL DP, OCSP and caIssuers.
	PointersURL string
	Log         *slog.Logger
	// Retired are intermediates this CA issued from before the current
	// one (pkid ca rotate-intermediate): their leaves still renew over
	// mTLS, and chains handed out for them end in them.
	Retired []*x509.Certificate
	// Steady, if set, is another authority's over the same clock (a
	// retired intermediate's authority shares the current one's), so that
	// a clock stepped ahead is measured from one start and warned about
	// once; otherwise New starts one on Clock.
	Steady *Steady
}

// Authority signs certificates under role policies and records them.
type Authority struct {
	d        Deps
	issuerID string
	rootPEM  []byte
	interPEM []byte
	chain    []string // interPEM, rootPEM: what every issuance answers with
	crlURL   string
	ocspURL  string
	aiaURL   string

	revoked hooks
	issued  hooks
	keygen  chan struct{} // bounds concurrent server-side key generation
	exts    extCache
	roles   atomic.Pointer[roleSet]
	retired map[string]*x509.Certificate // by issuer ID
	// halted, once set, is why the CA refuses to issue: its intermediate
	// is revoked on the root CRL (see Halt).
	halted atomic.Pointer[string]
	signer *watchedSigner // d.Signer, watched
}

// Steady is the clock that pruning goes by (see Steady): the CA's clock,
// held back from a forward step until the next start.
func (a *Authority) Steady() *Steady { return a.d.Steady }

// Halt stops every issuance for good (the server's own TLS certificate
// excepted, so CRLs, OCSP and /healthz stay reachable): a revocation of
// the intermediate is never undone, and nothing it signs would be trusted.
func (a *Authority) Halt(reason string) {
	if a.halted.CompareAndSwap(nil, &reason) {
		a.d.Log.Error("issuance halted", "reason", reason)
	}
}

// Halted says why nothing is issued, or "" while issuance goes on: Halt
// was called, or the intermediate has expired (a certificate would end
// before it began). /healthz reports it as status "halted".
func (a *Authority) Halted() string {
	if r := a.halted.Load(); r != nil {
		return *r
	}
	return IntermediateExpired(a.d.Intermediate, a.d.Clock.Now())
}

// IntermediateExpired says that inter has expired at now, and what to do,
// or "" while it is valid: Halted's reason, and the warning config check
// and serve's start give.
func IntermediateExpired(inter *x509.Certificate, now time.Time) string {
	if end := inter.NotAfter; !now.Before(end) {
		return fmt.Sprintf("the intermediate expired at %s: nothing is issued until a new CA hierarchy is made (pkid init --force keeps the store)", end.UTC().Format(time.RFC3339))
	}
	return ""
}

// halt is the refusal every issuance gets while Halted says why.
func (a *Authority) halt() error {
	if why := a.Halted(); why != "" {
		return errs.New(errs.Unavailable, "%s", why)
	}
	return nil
}

// New checks deps (the signer must match the intermediate, which must be a
// CA under the root) and precomputes what every issuance reuses.
func New(d Deps) (*Authority, error) {
	if d.Root == nil || d.Intermediate == nil || d.Signer == nil || d.Store == nil {
		return nil, errors.New("ca: root, intermediate, signer and store are required")
	}
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := keyutil.VerifyPair(d.Intermediate.PublicKey, d.Signer); err != nil {
		return nil, fmt.Errorf("ca: intermediate key does not match the intermediate certificate: %w", err)
	}
	if !d.Intermediate.IsCA {
		return nil, errors.New("ca: intermediate certificate is not a CA")
	}
	if err := d.Intermediate.CheckSignatureFrom(d.Root); err != nil {
		return nil, fmt.Errorf("ca: intermediate is not signed by the root: %w", err)
	}
	set, err := newRoleSet(d.Roles, d.Templates)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	d.Roles, d.Templates = nil, nil // the role set holds them from here
	signer := &watchedSigner{Signer: d.Signer, now: d.Clock.Now}
	d.Signer = signer
	if d.Steady == nil {
		d.Steady = NewSteady(d.Clock, d.Log)
	}
	a := &Authority{
		signer:   signer,
		d:        d,
		issuerID: hex.EncodeToString(d.Intermediate.SubjectKeyId),
		rootPEM:  PEMCert(d.Root.Raw),
		interPEM: PEMCert(d.Intermediate.Raw),
		keygen:   make(chan struct{}, runtime.NumCPU()),
	}
	a.chain = []string{string(a.interPEM), string(a.rootPEM)}
	if a.issuerID == "" {
		return nil, errors.New("ca: intermediate has no subject key identifier")
	}
	a.retired = map[string]*x509.Certificate{}
	for _, r := range d.Retired {
		id := hex.EncodeToString(r.SubjectKeyId)
		if !r.IsCA || id == "" || id == a.issuerID || r.CheckSignatureFrom(d.Root) != nil {
			return nil, fmt.Errorf("ca: retired intermediate %q is not a CA of this root with a key identifier of its own", r.Subject.CommonName)
		}
		a.retired[id] = r
	}
	a.roles.Store(set)
	if p := strings.TrimSuffix(d.PointersURL, "/"); p != "" {
		a.crlURL = p + "/crl/" + a.issuerID
		a.ocspURL = p + "/ocsp"
		a.aiaURL = p + "/v1/ca/intermediate.der"
	}
	return a, nil
}

// IssuerID is the intermediate's subject key ID in lowercase hex: the
// {issuer} of CRL URLs and every record's Issuer.
func (a *Authority) IssuerID() string { return a.issuerID }

// Root returns the root certificate.
func (a *Authority) Root() *x509.Certificate { return a.d.Root }

// Intermediate returns the current intermediate certificate.
func (a *Authority) Intermediate() *x509.Certificate { return a.d.Intermediate }

// RootPEM is the root bundle served at /v1/ca/roots.
func (a *Authority) RootPEM() []byte { return a.rootPEM }

// ChainPEM is the intermediate then the root.
func (a *Authority) ChainPEM() []byte { return bytes.Join([][]byte{a.interPEM, a.rootPEM}, nil) }

// IntermediatePEM is the intermediate alone.
func (a *Authority) IntermediatePEM() []byte { return a.interPEM }

// IssuerPEM is the intermediate that issued under issuerID (a record's
// Issuer): a retired one for a certificate from before a rotation, the
// current one otherwise.
func (a *Authority) IssuerPEM(issuerID string) []byte {
	if r := a.retired[issuerID]; r != nil {
		return PEMCert(r.Raw)
	}
	return a.interPEM
}

// issuedBy returns the intermediate, current or retired, whose name and key
// identifier cert names as its issuer, or nil.
func (a *Authority) issuedBy(cert *x509.Certificate) *x509.Certificate {
	inter := a.d.Intermediate
	if r := a.retired[hex.EncodeToString(cert.AuthorityKeyId)]; r != nil {
		inter = r
	}
	if !bytes.Equal(cert.RawIssuer, inter.RawSubject) || !bytes.Equal(cert.AuthorityKeyId, inter.SubjectKeyId) {
		return nil
	}
	return inter
}

// Role returns the named role or nil.
func (a *Authority) Role(name string) *policies.Role { return a.roles.Load().roles[name] }

// Roles returns every role, as of now: the map is never changed, a reload
// replaces it.
func (a *Authority) Roles() map[string]*policies.Role { return a.roles.Load().roles }

// SetRoles replaces the roles and their x509util templates (role name →
// text) while the CA serves: `pkid serve` on SIGHUP. A template that does
// not parse refuses the whole set and keeps the old one. A request in
// flight finishes under the set it started with; the next one sees the new.
func (a *Authority) SetRoles(roles map[string]*policies.Role, templates map[string]string) error {
	set, err := newRoleSet(roles, templates)
	if err != nil {
		return err
	}
	a.roles.Store(set)
	return nil
}

// Store returns the store the authority commits to.
func (a *Authority) Store() store.Store { return a.d.Store }

// OnRevoke registers a hook called after every committed revocation (the
// CRL and OCSP publishers use it to refresh promptly). A revocation listed
// with no record (ReapplyCRL) comes with a record of the CRL entry's
// fields and its issuer only.
func (a *Authority) OnRevoke(fn func(*store.CertRecord)) { a.revoked.add(fn) }

// OnIssue registers a hook called after every committed issuance, whatever
// the door (REST, renewal, ACME, the server's own certificate).
func (a *Authority) OnIssue(fn func(*store.CertRecord)) { a.issued.add(fn) }

// hooks are callbacks run after a committed change, outside any lock.
type hooks struct {
	mu  sync.Mutex
	fns []func(*store.CertRecord)
}

func (h *hooks) add(fn func(*store.CertRecord)) {
	h.mu.Lock()
	h.fns = append(h.fns, fn)
	h.mu.Unlock()
}

func (h *hooks) run(rec *store.CertRecord) {
	h.mu.Lock()
	fns := slices.Clone(h.fns)
	h.mu.Unlock()
	for _, fn := range fns {
		fn(rec)
	}
}
