package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.step.sm/crypto/pemutil"
	xacme "golang.org/x/crypto/acme"
	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestRotateIntermediate: `pkid ca rotate-intermediate` replaces the
// intermediate while the certificates of the old one stay checkable and
// renewable. After the restart the CA issues from the new intermediate
// (same name constraints, " G2" in its name, zlint clean); the old one's
// CRL is still served at the URL its leaves carry and in the bundle, a
// revocation of one of its leaves reaches that CRL and OCSP (each signed
// with the old key); and an old leaf renews over mTLS into the new one.
func TestRotateIntermediate(t *testing.T) {
	d, https, plain := initCA(t, "--permitted-domain", "internal", "--permitted-domain", "localhost", "--permitted-ip", "127.0.0.0/8")
	s := serve(t, d, https)
	cfg, root := filepath.Join(d, "pkid.yaml"), filepath.Join(d, "certs", "root.crt")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin", "--name", "ops"))
	issue := func(s *server, cn string) (string, string, *x509.Certificate) {
		t.Helper()
		return issueCert(t, s, root, tok, cn)
	}
	renewCrt, renewKey, _ := issue(s, "renew.internal")
	_, _, doomed := issue(s, "doomed.internal")
	old, _ := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
	oldID := hex.EncodeToString(old.SubjectKeyId)
	s.stop(t, syscall.SIGTERM)

	newID := strings.TrimSpace(mustPKID(t, nil, "ca", "rotate-intermediate", "--dir", d))
	inter, _ := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
	if hex.EncodeToString(inter.SubjectKeyId) != newID || newID == oldID || inter.Subject.CommonName != old.Subject.CommonName+" G2" ||
		len(inter.PermittedDNSDomains) != 2 || len(inter.PermittedIPRanges) != 1 || !inter.PermittedDNSDomainsCritical {
		t.Fatalf("new intermediate %q %s, constraints %v %v", inter.Subject.CommonName, newID, inter.PermittedDNSDomains, inter.PermittedIPRanges)
	}
	testutil.LintCertificate(t, inter.Raw)
	if fi, err := os.Stat(filepath.Join(d, "secrets", "retired", oldID+".key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("retired key: %v", err)
	}

	if r := pkid(t, nil, "config", "check", "--dir", d); r.code != 0 || !strings.Contains(r.stderr, "retired intermediates still served: "+oldID) {
		t.Fatalf("config check after the rotation: exit %d %s", r.code, r.stderr)
	}

	s = serve(t, d, https)
	if resp, err := s.client.Get(s.base + "/healthz"); err != nil {
		t.Fatal(err)
	} else if h, _ := io.ReadAll(resp.Body); !strings.Contains(string(h), `"retired_issuers":["`+oldID+`"]`) {
		t.Fatalf("/healthz does not name the retired issuer: %s", h)
	} else {
		resp.Body.Close()
	}
	_, _, fresh := issue(s, "fresh.internal")
	if hex.EncodeToString(fresh.AuthorityKeyId) != newID {
		t.Fatalf("issued by %x, want the new intermediate %s", fresh.AuthorityKeyId, newID)
	}
	oldCRL := func() *x509.RevocationList {
		t.Helper()
		crl := testutil.FetchCRL(t, http.DefaultClient, "http://"+plain+"/crl/"+oldID)
		if err := crl.CheckSignatureFrom(old); err != nil {
			t.Fatalf("the old intermediate's CRL: %v", err)
		}
		return crl
	}
	oldCRL()
	bundle, _ := testutil.Fetch(t, http.DefaultClient, "http://"+plain+"/crl/bundle.pem")
	if n := bytes.Count(bundle, []byte("BEGIN X509 CRL")); n != 3 {
		t.Fatalf("bundle holds %d CRLs, want the root's, the new and the old intermediate's", n)
	}

	// Revoking an old leaf: its issuer's CRL and OCSP, under the old key.
	mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "keyCompromise", ca.SerialString(doomed.SerialNumber))
	awaitCRLListing(t, plain, old, doomed)
	if r := ocspStatus(t, plain, doomed, old); r.Status != ocsp.Revoked {
		t.Fatalf("OCSP for the old intermediate's revoked leaf: %+v", r)
	}

	// An old leaf renews over mTLS into the new intermediate.
	mustPKID(t, nil, "cert", "renew", "--ca-url", s.base, "--root", root, "--cert", renewCrt, "--key", renewKey)
	chain, err := pemutil.ReadCertificateBundle(renewCrt)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := ca.LoadCertificate(root)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(rootCert)
	if len(chain) != 2 || !chain[1].Equal(inter) {
		t.Fatalf("renewed file holds %d certificates, want the leaf and the new intermediate", len(chain))
	}
	inters.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "renew.internal"}); err != nil {
		t.Fatalf("renewed leaf: %v", err)
	}

	// A new hierarchy over the same directory (init --force keeps the
	// store) leaves the retired files of the old root behind: serve
	// ignores them, saying so, rather than refusing to start.
	s.stop(t, syscall.SIGTERM)
	mustPKID(t, nil, "init", "--dir", d, "--force", "--name", "Test CA", "--listen", https, "--http-listen", plain)
	s = serve(t, d, https)
	if !strings.Contains(s.logs(), "retired intermediate not signed by this CA's root (an older hierarchy?): ignored") {
		t.Fatalf("serve over a new hierarchy does not say it ignores the old retired intermediate:\n%s", tail(s.logs(), 2000))
	}
}

// TestRotateIntermediateACME: a certificate ordered through ACME before a
// rotation is downloaded afterwards with the intermediate that issued it,
// not the current one, so the chain a client fetches again still verifies.
func TestRotateIntermediateACME(t *testing.T) {
	d, https, _, h01 := initACMECA(t, map[string]string{})
	s := serve(t, d, https)
	publish, stop := testutil.HTTP01Responder(t, h01)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &xacme.Client{Key: key, DirectoryURL: s.base + "/acme/default/directory", HTTPClient: s.client}
	if _, err := c.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	o, err := c.AuthorizeOrder(ctx, xacme.IPIDs("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.SolveHTTP01(t, ctx, c, o, publish)
	if o, err = c.WaitOrder(ctx, o.URI); err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, leafKey)
	_, certURL, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
	s.stop(t, syscall.SIGTERM)
	mustPKID(t, nil, "ca", "rotate-intermediate", "--dir", d)
	s = serve(t, d, https)

	c = &xacme.Client{Key: key, KID: c.KID, DirectoryURL: c.DirectoryURL, HTTPClient: s.client}
	chain, err := c.FetchCert(ctx, certURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !bytes.Equal(chain[1], old.Raw) {
		t.Fatalf("chain of %d certificates, want the leaf and the retired intermediate that issued it", len(chain))
	}
	leaf, _ := x509.ParseCertificate(chain[0])
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	rootCert, _ := ca.LoadCertificate(filepath.Join(d, "certs", "root.crt"))
	roots.AddCert(rootCert)
	inters.AddCert(old)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters}); err != nil {
		t.Fatalf("the chain fetched after the rotation: %v", err)
	}
}
