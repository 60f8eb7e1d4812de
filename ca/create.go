package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.step.sm/crypto/x509util"

	"pkid/policies"
)

// HierarchyOptions describe a new root and intermediate.
type HierarchyOptions struct {
	Name    string // e.g. "Acme Internal CA"; the intermediate gets " Intermediate"
	KeyType string
	// RootValidity defaults to 10 years, IntermediateValidity to 5.
	RootValidity, IntermediateValidity time.Duration
	// PermittedDomains/IPs become critical name constraints on the
	// intermediate, so a leaked intermediate cannot sign for the outside.
	PermittedDomains []string
	PermittedIPs     []netip.Prefix
	// RootCRLURL, if set, is the intermediate's CRL Distribution Point:
	// where the root's CRL is served ({pointers_url}/v1/ca/root.crl).
	// Relying parties that check revocation at every level of a chain
	// (Java's PKIX validator with revocation checking on) find the root's
	// CRL only there; without it they cannot tell the intermediate's
	// status and refuse the chain.
	RootCRLURL string
	Now        time.Time
	// IntermediateKey, if set, is the intermediate's key, made elsewhere
	// (in a PKCS#11 token: CreateTokenKey); otherwise one of KeyType is
	// generated.
	IntermediateKey crypto.Signer
}

// Hierarchy is a freshly made CA: certificates and their keys.
type Hierarchy struct {
	Root, Intermediate       *x509.Certificate
	RootKey, IntermediateKey crypto.Signer
}

// MaxCANameLength is the longest CA name a hierarchy takes, in
// characters: the intermediate's common name is the name and
// " Intermediate", " Intermediate G2" after a rotation and so on to G99,
// and RFC 5280 bounds a common name at 64 characters (ub-common-name).
const MaxCANameLength = policies.MaxCNLength - len(" Intermediate G99")

// CheckCAName says why name cannot name a CA, or nil.
func CheckCAName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("CA name %q is not UTF-8", name)
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return fmt.Errorf("CA name %q holds a control character", name)
	}
	if n := utf8.RuneCountInString(name); n > MaxCANameLength {
		return fmt.Errorf("CA name %q has %d characters; at most %d fit: the intermediate's common name adds up to \" Intermediate G99\" (after rotations), and RFC 5280 bounds it at %d", name, n, MaxCANameLength, policies.MaxCNLength)
	}
	return nil
}

// CreateHierarchy makes a self-signed root and an intermediate under it
// (pathLen 0) from step's default templates.
func CreateHierarchy(o HierarchyOptions) (*Hierarchy, error) {
	if o.Name == "" {
		o.Name = "pkid Internal CA"
	}
	if err := CheckCAName(o.Name); err != nil {
		return nil, err
	}
	if o.RootValidity == 0 {
		o.RootValidity = 10 * 365 * 24 * time.Hour
	}
	if o.IntermediateValidity == 0 {
		o.IntermediateValidity = 5 * 365 * 24 * time.Hour
	}
	if o.IntermediateValidity > o.RootValidity {
		return nil, fmt.Errorf("intermediate validity %s exceeds the root's %s", o.IntermediateValidity, o.RootValidity)
	}
	rootKey, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	interKey := o.IntermediateKey
	if interKey == nil {
		if interKey, err = GenerateKey(o.KeyType); err != nil {
			return nil, err
		}
	}
	rootName := o.Name + " Root"
	root, err := signCA(rootName, x509util.DefaultRootTemplate, rootKey, nil, rootKey, o.Now, o.RootValidity, nil)
	if err != nil {
		return nil, fmt.Errorf("create root: %w", err)
	}
	constrain := func(c *x509.Certificate) {
		o.constrain(c)
		if o.RootCRLURL != "" {
			c.CRLDistributionPoints = []string{o.RootCRLURL}
		}
	}
	inter, err := signCA(o.Name+" Intermediate", x509util.DefaultIntermediateTemplate, interKey, root, rootKey, o.Now, o.IntermediateValidity, constrain)
	if err != nil {
		return nil, fmt.Errorf("create intermediate: %w", err)
	}
	return &Hierarchy{Root: root, Intermediate: inter, RootKey: rootKey, IntermediateKey: interKey}, nil
}

// constrain sets o's name constraints on c, critical if there are any.
func (o HierarchyOptions) constrain(c *x509.Certificate) {
	c.PermittedDNSDomains = o.PermittedDomains
	for _, p := range o.PermittedIPs {
		c.PermittedIPRanges = append(c.PermittedIPRanges, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	c.PermittedDNSDomainsCritical = len(c.PermittedDNSDomains)+len(c.PermittedIPRanges) > 0
}

// OutsideConstraints says which of the given names (pkid's own TLS
// certificate's, say) the intermediate's name constraints would not allow,
// or "" if they allow them all: init refuses such a hierarchy rather than
// make a CA whose own certificate no client accepts.
func (o HierarchyOptions) OutsideConstraints(dnsNames, ips []string) string {
	var c x509.Certificate
	o.constrain(&c)
	return policies.NamesOutside(&c, dnsNames, ips)
}

// signCA signs a CA certificate for key's public half. parent nil means
// self-signed.
func signCA(cn, tmplText string, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, now time.Time, validity time.Duration, adjust func(*x509.Certificate)) (*x509.Certificate, error) {
	csr, err := x509util.CreateCertificateRequest(cn, nil, key)
	if err != nil {
		return nil, err
	}
	c, err := x509util.NewCertificate(csr, x509util.WithTemplate(tmplText, x509util.CreateTemplateData(cn, nil)))
	if err != nil {
		return nil, err
	}
	tmpl := c.GetCertificate()
	tmpl.Subject = pkix.Name{CommonName: cn}
	tmpl.NotBefore = now.Add(-time.Minute).UTC().Truncate(time.Second)
	tmpl.NotAfter = now.Add(validity).UTC().Truncate(time.Second)
	if tmpl.SerialNumber, err = newSerial(now); err != nil {
		return nil, err
	}
	if tmpl.SubjectKeyId, err = x509util.GenerateSubjectKeyID(key.Public()); err != nil {
		return nil, err
	}
	if adjust != nil {
		adjust(tmpl)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// RootCRL signs a CRL for the root listing the given revoked intermediates.
// Its number is thisUpdate in Unix nanoseconds, so it always increases.
func RootCRL(root *x509.Certificate, key crypto.Signer, revoked []x509.RevocationListEntry, now time.Time, validity time.Duration) ([]byte, error) {
	now = now.UTC()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now,
		NextUpdate:                now.Add(validity),
		RevokedCertificateEntries: revoked,
	}, root, key)
	if err != nil {
		return nil, fmt.Errorf("sign root CRL: %w", err)
	}
	return der, nil
}

// NextIntermediate makes the successor of the intermediate cur under root
// (pkid ca rotate-intermediate) with a new key of keyType ("" for cur's
// type): NextIntermediateFor with a key generated here.
func NextIntermediate(root *x509.Certificate, rootKey crypto.Signer, cur *x509.Certificate, keyType string, validity time.Duration, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	kt, err := SuccessorKeyType(cur, keyType)
	if err != nil {
		return nil, nil, err
	}
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, nil, err
	}
	inter, err := NextIntermediateFor(root, rootKey, cur, key, validity, now)
	if err != nil {
		return nil, nil, err
	}
	return inter, key, nil
}

// SuccessorKeyType is the key type of cur's successor: keyType, or ""
// for cur's own.
func SuccessorKeyType(cur *x509.Certificate, keyType string) (string, error) {
	if keyType != "" {
		return keyType, nil
	}
	kt, why := policies.KeyTypeOf(cur.PublicKey)
	if why != "" {
		return "", fmt.Errorf("the current intermediate's key: %s; name one with --key-type", why)
	}
	return kt, nil
}

// MinIntermediateValidity is the shortest validity `pkid ca
// rotate-intermediate` takes: an intermediate that ends within a day cuts
// every leaf short (tests make shorter ones through NextIntermediate).
const MinIntermediateValidity = 24 * time.Hour

// NextIntermediateFor certifies key (made here, or in a token) as the
// successor of the intermediate cur under root: the same name
// constraints and CRL Distribution Point, a name that tells the
// generations apart ("… G2", "… G3"), valid for validity (default 5
// years) but never past the root.
func NextIntermediateFor(root *x509.Certificate, rootKey crypto.Signer, cur *x509.Certificate, key crypto.Signer, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	if err := cur.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("the current intermediate is not signed by this root: %w", err)
	}
	if validity == 0 {
		validity = 5 * 365 * 24 * time.Hour
	}
	if validity < 0 {
		return nil, fmt.Errorf("intermediate validity %s: it would be expired when made", validity)
	}
	if left := root.NotAfter.Sub(now); validity > left {
		if left < 24*time.Hour {
			return nil, fmt.Errorf("the root expires at %s: make a new hierarchy (pkid init) instead", root.NotAfter.UTC().Format(time.RFC3339))
		}
		validity = left
	}
	name := nextGeneration(cur.Subject.CommonName)
	if n := utf8.RuneCountInString(name); n > policies.MaxCNLength {
		// A CA named before CheckCAName bounded names.
		return nil, fmt.Errorf("the successor's common name %q would have %d characters, past RFC 5280's %d: make a new hierarchy (pkid init --force keeps the store) with a shorter --name", name, n, policies.MaxCNLength)
	}
	inter, err := signCA(name, x509util.DefaultIntermediateTemplate, key, root, rootKey, now, validity, func(c *x509.Certificate) {
		c.PermittedDNSDomains, c.PermittedIPRanges = cur.PermittedDNSDomains, cur.PermittedIPRanges
		c.ExcludedDNSDomains, c.ExcludedIPRanges = cur.ExcludedDNSDomains, cur.ExcludedIPRanges
		c.PermittedDNSDomainsCritical = cur.PermittedDNSDomainsCritical
		c.CRLDistributionPoints = cur.CRLDistributionPoints
	})
	if err != nil {
		return nil, fmt.Errorf("create intermediate: %w", err)
	}
	return inter, nil
}

// nextGeneration names an intermediate's successor: "X" → "X G2",
// "X G2" → "X G3".
func nextGeneration(cn string) string {
	if i := strings.LastIndex(cn, " G"); i >= 0 {
		if n, err := strconv.Atoi(cn[i+2:]); err == nil && n >= 2 && cn[i+2] != '0' {
			return cn[:i] + " G" + strconv.Itoa(n+1)
		}
	}
	return cn + " G2"
}
