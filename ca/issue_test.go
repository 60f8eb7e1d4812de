package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
	"pkid/store/storetest"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func defaultRole() *policies.Role {
	return &policies.Role{
		Name: "default", AllowedDomains: []string{"internal", "localhost"}, AllowSubdomains: true,
		AllowedIPRanges:    []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AllowedURIPatterns: []string{"spiffe://internal/*"},
		DefaultTTL:         24 * time.Hour, MaxTTL: 168 * time.Hour,
		KeyTypes:    policies.KnownKeyTypes,
		ExtKeyUsage: []string{"server_auth", "client_auth"},
	}
}

// tempStore opens a fresh bbolt store that closes when the test ends.
func tempStore(t testing.TB) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "pkid.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newAuthority(t testing.TB, keyType string, roles ...*policies.Role) (*ca.Authority, *store.Bolt, *ca.FakeClock) {
	t.Helper()
	a, st, clk, err := buildAuthority(t, keyType, nil, roles...)
	if err != nil {
		t.Fatal(err)
	}
	return a, st, clk
}

// buildAuthority makes an Authority from the fixtures of keyType over a
// fresh store; whether ca.New may refuse is the caller's to judge.
func buildAuthority(t testing.TB, keyType string, templates map[string]string, roles ...*policies.Role) (*ca.Authority, *store.Bolt, *ca.FakeClock, error) {
	t.Helper()
	tc := testutil.CA(t, keyType)
	st := tempStore(t)
	if len(roles) == 0 {
		roles = []*policies.Role{defaultRole()}
	}
	rm := map[string]*policies.Role{}
	for _, r := range roles {
		rm[r.Name] = r
	}
	clk := ca.NewFakeClock(now)
	a, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: rm, Templates: templates, Store: st, Clock: clk, PointersURL: "http://127.0.0.1:8080"})
	return a, st, clk, err
}

func makeCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssueEveryKeyType issues a leaf of every key type under an
// intermediate of every key type, verifies the chain for the right EKU and
// lints root, intermediate and leaf.
func TestIssueEveryKeyType(t *testing.T) {
	ctx := context.Background()
	for _, caType := range testutil.KeyTypes {
		t.Run("ca-"+caType, func(t *testing.T) {
			a, st, _ := newAuthority(t, caType)
			tc := testutil.CA(t, caType)
			if n := testutil.LintCertificate(t, tc.Root.Raw); n < 20 {
				t.Errorf("only %d lints applied to the root", n)
			}
			testutil.LintCertificate(t, tc.Intermediate.Raw)
			roots := x509.NewCertPool()
			roots.AddCert(tc.Root)
			inters := x509.NewCertPool()
			inters.AddCert(tc.Intermediate)
			for _, leafType := range testutil.KeyTypes {
				csr := makeCSR(t, testutil.LeafKey(t, leafType), &x509.CertificateRequest{
					Subject:  pkix.Name{CommonName: "svc.internal"},
					DNSNames: []string{"svc.internal", "alt.svc.internal"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.9")},
				})
				iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr, TTL: time.Hour, Requester: "test"})
				if err != nil {
					t.Fatalf("leaf %s: %v", leafType, err)
				}
				leaf := parsePEM(t, iss.PEM)
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSName: "svc.internal"}); err != nil {
					t.Fatalf("leaf %s does not verify: %v", leafType, err)
				}
				if n := testutil.LintCertificate(t, leaf.Raw); n < 30 {
					t.Errorf("leaf %s: only %d lints applied", leafType, n)
				}
				if !leaf.NotBefore.Equal(now.Add(-time.Minute)) || !leaf.NotAfter.Equal(now.Add(time.Hour)) {
					t.Errorf("validity %s - %s", leaf.NotBefore, leaf.NotAfter)
				}
				if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 159 || ca.SerialString(leaf.SerialNumber) != iss.Record.Serial {
					t.Errorf("serial %x vs record %s", leaf.SerialNumber, iss.Record.Serial)
				}
				if len(leaf.CRLDistributionPoints) != 1 || !strings.HasSuffix(leaf.CRLDistributionPoints[0], "/crl/"+a.IssuerID()) {
					t.Errorf("CRL DP %v", leaf.CRLDistributionPoints)
				}
				if rec, err := st.GetCertificate(ctx, iss.Record.Serial); err != nil || rec.Issuer != a.IssuerID() {
					t.Fatalf("record not committed before return: %v", err)
				}
			}
		})
	}
	// zlint v3.7.3's RFC 5280 source holds 124 lints; one is excluded by
	// name (see internal/testutil/lint.go). A different count means the
	// registry or the exclusions changed: look before updating the figure.
	if n := testutil.LintRegistrySize(); n != 123 {
		t.Fatalf("zlint RFC 5280 registry holds %d lints, want 123", n)
	}
}

// TestCSRNeverDecides: a CSR asking for CA:true, pathLen, name constraints
// and codeSigning gets none of it.
func TestCSRNeverDecides(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	bc, _ := asn1.Marshal(struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}{true, 3})
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}})
	csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{
		DNSNames: []string{"a.internal"},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc},
			{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: eku},
		},
	})
	iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, iss.PEM)
	if c.IsCA || c.MaxPathLen > 0 || c.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Fatal("CSR made a CA")
	}
	for _, e := range c.ExtKeyUsage {
		if e == x509.ExtKeyUsageCodeSigning {
			t.Fatal("CSR got codeSigning")
		}
	}
	if len(c.ExtKeyUsage) != 2 {
		t.Fatalf("EKU %v, want the role's two", c.ExtKeyUsage)
	}
	if !c.NotAfter.Equal(now.Add(24 * time.Hour)) {
		t.Fatalf("default TTL not applied: %s", c.NotAfter)
	}
}

func TestLongCNLeftOut(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	long := strings.Repeat("x", 60) + ".internal"
	csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: long}})
	iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, iss.PEM)
	if c.Subject.CommonName != "" || len(c.DNSNames) != 1 || c.DNSNames[0] != long {
		t.Fatalf("subject %q SANs %v", c.Subject.CommonName, c.DNSNames)
	}
	testutil.LintCertificate(t, c.Raw)
}

func TestSignRefusals(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	key := testutil.LeafKey(t, "ec-p256")
	cases := []struct {
		name string
		req  *ca.SignRequest
		kind errs.Kind
		want string
	}{
		{"fail/unknown role", &ca.SignRequest{Role: "nope", CSR: makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"a.internal"}})}, errs.NotFound, "known: default"},
		{"fail/outside domain", &ca.SignRequest{Role: "default", CSR: makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"evil.com"}})}, errs.RejectedIdentifier, "subdomains of internal"},
		{"fail/ttl", &ca.SignRequest{Role: "default", TTL: 1000 * time.Hour, CSR: makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"a.internal"}})}, errs.Forbidden, "max_ttl"},
		{"fail/exact names", &ca.SignRequest{Role: "default", ExactNames: []string{"a.internal"}, CSR: makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"a.internal", "b.internal"}})}, errs.Forbidden, "exactly a.internal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Sign(context.Background(), c.req)
			if err == nil || errs.KindOf(err) != c.kind || !strings.Contains(errs.DetailOf(err), c.want) {
				t.Fatalf("got %v (kind %v), want %v with %q", err, errs.KindOf(err), c.kind, c.want)
			}
		})
	}
}

// TestEveryReasonAtOnce: a CSR with several faults — a weak key and a name
// outside the role — passes intake (its signature is sound and cheap to
// check) and is refused by policy with both reasons in one answer, so the
// requester fixes both at once. This is why ParseCSRDER's size gate refuses
// early only keys larger than any key type.
func TestEveryReasonAtOnce(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ca.ParseCSRDER(makeCSR(t, weak, &x509.CertificateRequest{DNSNames: []string{"evil.example"}}).Raw)
	if err != nil {
		t.Fatalf("intake refused a CSR policy should judge: %v", err)
	}
	_, err = a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr})
	for _, want := range []string{"evil.example", "RSA key of 1024 bits is too weak"} {
		if !strings.Contains(errs.DetailOf(err), want) {
			t.Errorf("detail %q lacks %q", errs.DetailOf(err), want)
		}
	}
}

func TestParseCSR(t *testing.T) {
	good := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"a.internal"}})
	goodPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: good.Raw})
	if _, err := ca.ParseCSR(goodPEM); err != nil {
		t.Fatalf("ok/good: %v", err)
	}
	tampered := append([]byte{}, good.Raw...)
	tampered[len(tampered)-5] ^= 0xff
	cases := map[string][]byte{
		"fail/not pem":       []byte("hello"),
		"fail/wrong type":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Raw}),
		"fail/garbage der":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{0x30, 0x03, 1, 2, 3}}),
		"fail/bad signature": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}),
		"fail/two blocks":    append(append([]byte{}, goodPEM...), goodPEM...),
	}
	for name, in := range cases {
		if _, err := ca.ParseCSR(in); err == nil || errs.KindOf(err) != errs.BadCSR {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A CSR whose RSA key is far larger than any key type (its signature is
	// garbage; checking it would cost a core a fifth of a second) is refused
	// for its size, as policy refuses such a key (403), and one of 4097 bits
	// too.
	rsaCSR := makeCSR(t, testutil.LeafKey(t, "rsa-2048"), &x509.CertificateRequest{DNSNames: []string{"a.internal"}})
	for _, bits := range []int{4097, 190_000} {
		huge := testutil.WithRSAModulus(t, rsaCSR.Raw, bits)
		_, err := ca.ParseCSRDER(huge)
		if errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), fmt.Sprintf("key rsa-%d: RSA key of %d bits: only 2048, 3072 or 4096 bits are accepted", bits, bits)) {
			t.Errorf("fail/RSA key of %d bits: %v", bits, err)
		}
	}
	if _, err := ca.ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: makeCSR(t, testutil.LeafKey(t, "rsa-4096"), &x509.CertificateRequest{DNSNames: []string{"a.internal"}}).Raw})); err != nil {
		t.Errorf("ok/rsa-4096: %v", err)
	}
}

// TestParseCSRSANTypes: a CSR that asks for a subject alternative name
// of a type pkid does not issue is refused, naming the type, instead of
// being signed without it; DNS, IP, URI and email names pass.
func TestParseCSRSANTypes(t *testing.T) {
	key := testutil.LeafKey(t, "ec-p256")
	// san builds a subjectAltName extension of the given GeneralNames
	// (each a context tag and its DER contents).
	san := func(names ...asn1.RawValue) pkix.Extension {
		v, err := asn1.Marshal(names)
		if err != nil {
			t.Fatal(err)
		}
		return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v}
	}
	dns := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("a.internal")}
	upn, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	utf8, _ := asn1.MarshalWithParams("user@internal", "utf8")
	value, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8})
	otherName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(upn, value...)}
	dirName, _ := asn1.Marshal(pkix.Name{CommonName: "x"}.ToRDNSequence())
	regID, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 3})
	for _, tc := range []struct {
		name string
		ext  pkix.Extension
		says string
	}{
		{"ok/dns, ip, uri, email", san(dns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: []byte{10, 0, 0, 1}},
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("spiffe://internal/a")}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte("a@internal")}), ""},
		{"fail/otherName (UPN)", san(dns, otherName), "type otherName 1.3.6.1.4.1.311.20.2.3, which pkid does not issue"},
		{"fail/directoryName", san(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dirName}, dns), "type directoryName"},
		{"fail/registeredID", san(dns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 8, Bytes: regID[2:]}), "type registeredID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr := makeCSR(t, key, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{tc.ext}})
			_, err := ca.ParseCSRDER(csr.Raw)
			if tc.says == "" {
				if err != nil || len(csr.DNSNames) != 1 || len(csr.IPAddresses) != 1 || len(csr.URIs) != 1 || len(csr.EmailAddresses) != 1 {
					t.Fatalf("%v; parsed %v %v %v %v", err, csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses)
				}
				return
			}
			if errs.KindOf(err) != errs.BadCSR || !strings.Contains(errs.DetailOf(err), tc.says) {
				t.Fatalf("%v, want badCSR saying %q", err, tc.says)
			}
		})
	}
}

func TestIssueServerSideKey(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	iss, key, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default"}, KeyType: "ed25519", CommonName: "k.internal", URIs: []string{"spiffe://internal/ns/a"}})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, iss.PEM)
	if c.PublicKeyAlgorithm != x509.Ed25519 || !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatal("key mismatch")
	}
	if len(c.URIs) != 1 || len(c.DNSNames) != 1 {
		t.Fatalf("SANs %v %v", c.DNSNames, c.URIs)
	}
	testutil.LintCertificate(t, c.Raw)
	if _, _, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default"}, KeyType: "rsa-1024", CommonName: "k.internal"}); errs.KindOf(err) != errs.Malformed {
		t.Fatalf("fail/rsa-1024: %v", err)
	}
}

// TestCutAtIntermediateEnd: a certificate never outlives the intermediate
// that signs it (its notAfter is cut to the intermediate's), and once the
// intermediate has expired nothing is signed (503, saying why).
func TestCutAtIntermediateEnd(t *testing.T) {
	a, _, clk := newAuthority(t, "ec-p256")
	end := a.Intermediate().NotAfter
	clk.Advance(end.Add(-time.Hour).Sub(clk.Now()))
	csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"late.internal"}})
	iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr, TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if c := parsePEM(t, iss.PEM); !c.NotAfter.Equal(end) {
		t.Fatalf("ok/cut: notAfter %s, want the intermediate's %s", c.NotAfter, end)
	}
	clk.Advance(end.Add(time.Second).Sub(clk.Now()))
	if _, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr}); errs.KindOf(err) != errs.Unavailable || !strings.Contains(errs.DetailOf(err), "the intermediate expired") {
		t.Fatalf("fail/after the intermediate: %v", err)
	}
}

// TestIssueRefusals: server-side key generation checks the key type
// against the role before paying for a key, and a CN that is an IP
// address becomes an IP SAN (not a DNS name).
func TestIssueRefusals(t *testing.T) {
	strict := defaultRole()
	strict.Name, strict.KeyTypes = "strict", []string{"ec-p256"}
	a, _, _ := newAuthority(t, "ec-p256", defaultRole(), strict)
	_, _, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "strict"}, KeyType: "rsa-2048", CommonName: "k.internal"})
	if errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), `key_type rsa-2048 is not allowed by role "strict" (allowed: ec-p256)`) {
		t.Fatalf("fail/key type outside the role: %v", err)
	}
	if _, _, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "nope"}, KeyType: "ec-p256", CommonName: "k.internal"}); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("fail/unknown role: %v", err)
	}
	iss, _, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default"}, KeyType: "ec-p256", CommonName: "127.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, iss.PEM)
	if len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.ParseIP("127.0.0.9")) || len(c.DNSNames) != 0 {
		t.Fatalf("ok/IP common name: IPs %v, DNS names %v", c.IPAddresses, c.DNSNames)
	}
	testutil.LintCertificate(t, c.Raw)
}

func TestServerCertificate(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	iss, err := a.IssueServerCertificate(context.Background(), []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour, testutil.LeafKey(t, "ec-p256"))
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, iss.PEM)
	if c.DNSNames[0] != "localhost" || !c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || iss.Record.Role != ca.ServerRole {
		t.Fatalf("%v %v %s", c.DNSNames, c.IPAddresses, iss.Record.Role)
	}
	testutil.LintCertificate(t, c.Raw)
}

// TestReplaceAt: a certificate pkid uses itself is due at its renewal
// time while its record is valid, at once when revoked, and at its renewal
// time when the record cannot be read (a failing store must not make pkid
// re-issue every tick).
func TestReplaceAt(t *testing.T) {
	a, st, clk := newAuthority(t, "ec-p256")
	ctx := context.Background()
	renewAt := clk.Now().Add(40 * time.Minute)
	issued := func(t *testing.T) *big.Int {
		key, err := ca.GenerateKey("ec-p256") // a fresh key, as the server's: a revoked one is blocked
		if err != nil {
			t.Fatal(err)
		}
		iss, err := a.IssueServerCertificate(ctx, []string{"localhost"}, nil, time.Hour, key)
		if err != nil {
			t.Fatal(err)
		}
		return parsePEM(t, iss.PEM).SerialNumber
	}
	cases := []struct {
		name   string
		serial func(t *testing.T) *big.Int
		want   time.Time
	}{
		{"ok/valid keeps its renewal time", issued, renewAt},
		{"ok/revoked is due at once", func(t *testing.T) *big.Int {
			sn := issued(t)
			if _, _, err := a.Revoke(ctx, ca.SerialString(sn), "keyCompromise"); err != nil {
				t.Fatal(err)
			}
			return sn
		}, time.Time{}},
		{"ok/revoked by another replica is due at once", func(t *testing.T) *big.Int {
			sn := issued(t) // committed to the shared store, no hook of this Authority runs
			storetest.Revoke(t, st, ca.SerialString(sn), clk.Now(), "superseded")
			return sn
		}, time.Time{}},
		{"fail/unknown record keeps its renewal time", func(*testing.T) *big.Int { return big.NewInt(0x5e71a1) }, renewAt},
		{"fail/closed store keeps its renewal time", func(t *testing.T) *big.Int { // last: it closes the store
			sn := issued(t)
			if _, _, err := a.Revoke(ctx, ca.SerialString(sn), "superseded"); err != nil {
				t.Fatal(err)
			}
			st.Close() // revoked, but unreadable now
			return sn
		}, renewAt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.ReplaceAt(ctx, tc.serial(t), renewAt, "test certificate"); !got.Equal(tc.want) {
				t.Fatalf("ReplaceAt = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNormalizeSerial(t *testing.T) {
	for in, want := range map[string]string{"00AB:CD": "abcd", "abcd": "abcd", "0x": "", "": "", "-1": ""} {
		got, err := ca.NormalizeSerial(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
}

func TestCreateHierarchy(t *testing.T) {
	const rootCRL = "http://pki.internal/v1/ca/root.crl"
	h, err := ca.CreateHierarchy(ca.HierarchyOptions{Name: "T", KeyType: "ec-p256", Now: now, PermittedDomains: []string{"internal"}, PermittedIPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, RootCRLURL: rootCRL})
	if err != nil {
		t.Fatal(err)
	}
	// The intermediate points at the root's CRL; the root, a trust anchor,
	// points nowhere.
	if !slices.Equal(h.Intermediate.CRLDistributionPoints, []string{rootCRL}) || len(h.Root.CRLDistributionPoints) != 0 {
		t.Fatalf("CRL DPs: intermediate %v, root %v", h.Intermediate.CRLDistributionPoints, h.Root.CRLDistributionPoints)
	}
	if !h.Intermediate.IsCA || h.Intermediate.MaxPathLen != 0 || !h.Intermediate.MaxPathLenZero || !h.Intermediate.PermittedDNSDomainsCritical {
		t.Fatalf("intermediate constraints: %+v", h.Intermediate.BasicConstraintsValid)
	}
	if h.Root.NotAfter.Sub(now) < 9*365*24*time.Hour {
		t.Fatal("root validity short")
	}
	testutil.LintCertificate(t, h.Root.Raw)
	testutil.LintCertificate(t, h.Intermediate.Raw)
	crl, err := ca.RootCRL(h.Root, h.RootKey, nil, now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(crl)
	if err != nil || rl.CheckSignatureFrom(h.Root) != nil {
		t.Fatalf("root CRL: %v", err)
	}
	testutil.LintCRL(t, crl)
}

// TestSignKeepsToNameConstraints: under an intermediate constrained to
// "internal", a name the role allows but the constraint does not is
// refused before signing (403, naming the constraint); inside it, signed.
func TestSignKeepsToNameConstraints(t *testing.T) {
	h, err := ca.CreateHierarchy(ca.HierarchyOptions{KeyType: "ec-p256", Now: now, PermittedDomains: []string{"internal"}})
	if err != nil {
		t.Fatal(err)
	}
	st := tempStore(t)
	a, err := ca.New(ca.Deps{Root: h.Root, Intermediate: h.Intermediate, Signer: h.IntermediateKey, Roles: map[string]*policies.Role{"default": defaultRole()}, Store: st, Clock: ca.NewFakeClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(name string) error {
		_, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{name}})})
		return err
	}
	if err := sign("x.localhost"); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "dns x.localhost is outside the intermediate's name constraints (permitted dns: internal)") {
		t.Fatalf("fail/outside: %v", err)
	}
	if err := sign("x.internal"); err != nil {
		t.Fatalf("ok/inside: %v", err)
	}
}

// TestEmailCertificate: a role that allows a mail domain and
// email_protection issues a certificate for a mailbox; RFC 5280 lints
// apply to this kind too.
func TestEmailCertificate(t *testing.T) {
	mail := defaultRole()
	mail.Name = "mail"
	mail.AllowedEmailDomains = []string{"corp.internal"}
	mail.ExtKeyUsage = []string{"email_protection"}
	a, _, _ := newAuthority(t, "ec-p256", mail)
	csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{EmailAddresses: []string{"ops@corp.internal"}})
	iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "mail", CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEM(t, iss.PEM)
	if len(c.EmailAddresses) != 1 || c.EmailAddresses[0] != "ops@corp.internal" || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageEmailProtection {
		t.Fatalf("emails %v EKU %v", c.EmailAddresses, c.ExtKeyUsage)
	}
	if n := testutil.LintCertificate(t, c.Raw); n < 30 {
		t.Errorf("only %d lints applied", n)
	}
	csr = makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{EmailAddresses: []string{"ops@evil.example"}})
	if _, err := a.Sign(context.Background(), &ca.SignRequest{Role: "mail", CSR: csr}); errs.KindOf(err) != errs.RejectedIdentifier || !strings.Contains(err.Error(), "mail domain not allowed") {
		t.Fatalf("fail/other mail domain: %v", err)
	}
	// Issue (the CA makes the key) takes mailboxes too: as SANs, or as
	// the common name, which joins them as its SAN.
	for _, req := range []*ca.IssueRequest{
		{SignRequest: ca.SignRequest{Role: "mail"}, Emails: []string{"Ops.Team@Corp.Internal"}},
		{SignRequest: ca.SignRequest{Role: "mail"}, CommonName: "Ops.Team@Corp.Internal"},
	} {
		iss, _, err := a.Issue(context.Background(), req)
		if err != nil {
			t.Fatalf("ok/issue %+v: %v", req, err)
		}
		if c := parsePEM(t, iss.PEM); len(c.EmailAddresses) != 1 || c.EmailAddresses[0] != "Ops.Team@corp.internal" || len(c.DNSNames) != 0 {
			t.Fatalf("issue %+v: emails %v dns %v", req, c.EmailAddresses, c.DNSNames)
		}
	}
	if _, _, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "mail"}, Emails: []string{"ops@evil.example"}}); errs.KindOf(err) != errs.RejectedIdentifier {
		t.Fatalf("fail/issue for another mail domain: %v", err)
	}
}

// TestSerialsOfOneSecondAscend: serials carry the clock's millisecond, not
// the second the validity is truncated to, so the serials of one commit are
// neighbours at the end of the store's serial index rather than scattered
// over every page of that second. A reserved serial is signed as given.
func TestSerialsOfOneSecondAscend(t *testing.T) {
	a, _, clk := newAuthority(t, "ec-p256")
	csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"svc.internal"}})
	var prev *big.Int
	for i := range 5 {
		clk.Advance(time.Millisecond)
		iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr, Requester: "test"})
		if err != nil {
			t.Fatal(err)
		}
		sn := parsePEM(t, iss.PEM).SerialNumber
		if got, want := sn.FillBytes(make([]byte, 20))[:4], binary.BigEndian.AppendUint32(nil, store.TimePrefix(clk.Now())); !bytes.Equal(got, want) {
			t.Fatalf("sign %d: serial prefix %x, want the clock's millisecond %x", i, got, want)
		}
		if prev != nil && sn.Cmp(prev) <= 0 {
			t.Fatalf("serial %x after %x", sn, prev)
		}
		prev = sn
	}
	reserved, err := a.ReserveSerial()
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr, Requester: "test", Serial: reserved})
	if err != nil || parsePEM(t, iss.PEM).SerialNumber.Cmp(reserved) != 0 || iss.Record.Serial != ca.SerialString(reserved) {
		t.Fatalf("reserved serial %x: %v", reserved, err)
	}
}

// TestPrepareIssueRequest: the request /v1/issue builds around the key it
// makes (unsigned, without a DER round trip) carries what a CSR for the
// same key and names would, as crypto/x509 parses it, and signs into the
// same certificate fields.
func TestPrepareIssueRequest(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	for _, kt := range []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048"} {
		t.Run(kt, func(t *testing.T) {
			ir := &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default", Requester: "test"}, KeyType: kt, CommonName: "svc.internal",
				DNSNames: []string{"alt.internal"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.7"), net.ParseIP("::ffff:127.0.0.8")}, URIs: []string{"spiffe://internal/ns/a"}}
			sr, key, err := a.PrepareIssue(context.Background(), ir)
			if err != nil {
				t.Fatal(err)
			}
			got := sr.CSR
			want := makeCSR(t, key, &x509.CertificateRequest{Subject: got.Subject, DNSNames: got.DNSNames, IPAddresses: ir.IPAddresses, URIs: got.URIs})
			if got.Subject.CommonName != want.Subject.CommonName || !slices.Equal(got.DNSNames, want.DNSNames) ||
				!slices.EqualFunc(got.IPAddresses, want.IPAddresses, func(a, b net.IP) bool { return len(a) == len(b) && a.Equal(b) }) ||
				len(got.URIs) != 1 || got.URIs[0].String() != want.URIs[0].String() ||
				got.PublicKeyAlgorithm != want.PublicKeyAlgorithm || !bytes.Equal(got.RawSubjectPublicKeyInfo, want.RawSubjectPublicKeyInfo) ||
				!got.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.PublicKey) {
				t.Fatalf("request\n got %+v\nwant %+v", got, want)
			}
			iss, err := a.Sign(context.Background(), sr)
			if err != nil {
				t.Fatal(err)
			}
			leaf := parsePEM(t, iss.PEM)
			if !bytes.Equal(leaf.RawSubjectPublicKeyInfo, want.RawSubjectPublicKeyInfo) || len(leaf.IPAddresses) != 2 || len(leaf.IPAddresses[0]) != 4 {
				t.Fatalf("certificate key or IPs differ from the request's: %v", leaf.IPAddresses)
			}
			testutil.LintCertificate(t, leaf.Raw)
		})
	}
}

// TestIssueKeyQueueLeftWhenClientGoes: while every key generation slot
// is taken (a burst of RSA-4096 keys), a request whose client gives up
// leaves the queue with Unavailable instead of waiting to have a key made
// for nobody; one whose client waits gets its certificate once a slot
// frees.
func TestIssueKeyQueueLeftWhenClientGoes(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	release := a.HoldKeygen()
	issue := func(ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, _, err := a.Issue(ctx, &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default"}, CommonName: "q.internal"})
			done <- err
		}()
		return done
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone, waits := issue(ctx), issue(context.Background())
	cancel()
	select {
	case err := <-gone:
		if errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "the request ended while it waited for a key to be made (ec-p256; ") {
			t.Fatalf("fail/client gone: %v, want Unavailable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fail/a request whose client went away still waits for a key")
	}
	release()
	if err := <-waits; err != nil {
		t.Fatalf("ok/the client that waited: %v", err)
	}
}
