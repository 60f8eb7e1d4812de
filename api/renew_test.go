package api_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/internal/testutil"
)

const renewRole = `
allowed_domains: [svc.internal]
allow_subdomains: true
allowed_ip_ranges: []
allowed_uri_patterns: ["spiffe://svc.internal/*"]
default_ttl: 2h
max_ttl: 3h
key_types: [ec-p256, ec-p384]
ext_key_usage: [server_auth, client_auth]
renewal: {enabled: true, max_age: 3h}
revocation_pointers: true
acme: {enabled: false, challenges: [], require_eab: false}`

func renewWith(t *testing.T, s *testServer, r *api.IssueResponse, body string) (int, api.Problem, api.IssueResponse) {
	t.Helper()
	c := mtlsClient(t, s, r)
	defer c.CloseIdleConnections()
	resp, err := c.Post(s.base+"/v1/renew", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p api.Problem
	var out api.IssueResponse
	if resp.StatusCode == 201 {
		decode(t, raw, &out)
		out.PrivateKey = r.PrivateKey
	} else {
		decode(t, raw, &p)
	}
	return resp.StatusCode, p, out
}

// heldBy is a certificate not from pkid and its key, as renewWith takes
// an issuance.
func heldBy(der []byte, key crypto.Signer) *api.IssueResponse {
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return &api.IssueResponse{Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), Chain: []string{""},
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))}
}

func TestRenewal(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		return testutil.AddRole(testutil.AddRole(y, "svc", renewRole), "tpl", renewRole+"\ntemplate: tpl.json")
	})
	// A role with an x509util template (relative to pkid.yaml).
	tpl := `{"subject": {"commonName": {{ toJson .Subject.CommonName }}, "organization": ["Platform"]}, "sans": {{ toJson .SANs }}}`
	if err := os.WriteFile(filepath.Join(dir, "tpl.json"), []byte(tpl), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, ports)
	defer func() { s.stop() }()
	tok := tokenFor(t, s, "svc", func(o *api.TokenOptions) { o.Roles = []string{"svc", "tpl"} })
	issueIn := func(role, name string) *api.IssueResponse {
		var r api.IssueResponse
		if resp := s.do(t, "POST", "/v1/issue/"+role, tok, map[string]any{"common_name": name}, &r); resp.StatusCode != 201 {
			t.Fatalf("issue %d", resp.StatusCode)
		}
		return &r
	}
	issue := func(name string) *api.IssueResponse { return issueIn("svc", name) }

	t.Run("ok/role template, renewed with the same key", func(t *testing.T) {
		r := issueIn("tpl", "t.svc.internal")
		if c := parseCert(t, r.Certificate); len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "Platform" {
			t.Fatalf("template not applied: %v", c.Subject)
		}
		code, p, out := renewWith(t, s, r, "")
		if code != 201 {
			t.Fatalf("%d %+v", code, p)
		}
		if c := parseCert(t, out.Certificate); c.Subject.Organization[0] != "Platform" || c.DNSNames[0] != "t.svc.internal" {
			t.Fatalf("renewed %v %v", c.Subject, c.DNSNames)
		}
	})

	t.Run("ok/a SPIFFE ID renews as it is, case and all", func(t *testing.T) {
		const id = "spiffe://svc.internal/ns/Prod/sa/Web"
		var r api.IssueResponse
		if resp := s.do(t, "POST", "/v1/issue/svc", tok, map[string]any{"uris": []string{id}}, &r); resp.StatusCode != 201 {
			t.Fatalf("issue %d", resp.StatusCode)
		}
		code, p, out := renewWith(t, s, &r, "")
		if code != 201 {
			t.Fatalf("%d %+v", code, p)
		}
		if c := parseCert(t, out.Certificate); len(c.URIs) != 1 || c.URIs[0].String() != id {
			t.Fatalf("renewed %v", c.URIs)
		}
	})

	t.Run("ok/same names, fresh validity, linked", func(t *testing.T) {
		r := issue("a.svc.internal")
		s.clock.Advance(time.Minute)
		code, p, out := renewWith(t, s, r, "")
		if code != 201 {
			t.Fatalf("%d %+v", code, p)
		}
		old, nw := parseCert(t, r.Certificate), parseCert(t, out.Certificate)
		if nw.DNSNames[0] != "a.svc.internal" || !nw.NotAfter.After(old.NotAfter) || nw.SerialNumber.Cmp(old.SerialNumber) == 0 {
			t.Fatalf("renewed %v %s", nw.DNSNames, nw.NotAfter)
		}
		var v api.CertView
		s.do(t, "GET", "/v1/certs/"+out.Serial, "", nil, &v)
		if v.Replaces != r.Serial {
			t.Fatalf("replaces %q want %q", v.Replaces, r.Serial)
		}
		var prev api.CertView
		s.do(t, "GET", "/v1/certs/"+r.Serial, "", nil, &prev)
		if prev.ReplacedBy != out.Serial {
			t.Fatalf("replaced_by %q want %q", prev.ReplacedBy, out.Serial)
		}
		// And the renewed certificate renews in turn, with a new key from a CSR.
		key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		csr := csrPEM(t, key, "a.svc.internal", "a.svc.internal")
		code, p, out2 := renewWith(t, s, &out, `{"csr":`+jsonString(csr)+`}`)
		if code != 201 || parseCert(t, out2.Certificate).PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P384() {
			t.Fatalf("renew with a new key: %d %+v", code, p)
		}
	})
	// A leaked token: listing what it obtained finds the renewals of its
	// certificates too, though their requester is the certificate they
	// renewed; the public record does not say who asked.
	t.Run("ok/a token's renewals are listed under it", func(t *testing.T) {
		leaky := tokenFor(t, s, "svc", func(o *api.TokenOptions) { o.Name = "leaky" })
		var first api.IssueResponse
		if resp := s.do(t, "POST", "/v1/issue/svc", leaky, map[string]any{"common_name": "leak.svc.internal"}, &first); resp.StatusCode != 201 {
			t.Fatalf("issue %d", resp.StatusCode)
		}
		want := []string{first.Serial}
		held := &first
		for range 2 {
			code, p, out := renewWith(t, s, held, "")
			if code != 201 {
				t.Fatalf("renew %d %+v", code, p)
			}
			want, held = append(want, out.Serial), &out
		}
		var list struct{ Items []api.CertView }
		s.do(t, "GET", "/v1/certs?requester=token:leaky", s.admin, nil, &list)
		var got []string
		for _, v := range list.Items {
			got = append(got, v.Serial)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("listed %v, want the issuance and its renewals %v", got, want)
		}
		if last := list.Items[2]; last.Requester != "mtls:"+want[1] || last.AuthorizedBy != "token:leaky" {
			t.Fatalf("second renewal: requester %q authorized_by %q", last.Requester, last.AuthorizedBy)
		}
		s.do(t, "GET", "/v1/certs?requester=mtls:"+want[0], s.admin, nil, &list)
		if len(list.Items) != 1 || list.Items[0].Serial != want[1] {
			t.Fatalf("requester mtls:%s lists %+v, want only its successor", want[0], list.Items)
		}
		var public map[string]any
		s.do(t, "GET", "/v1/certs/"+want[2], "", nil, &public)
		if _, ok := public["requester"]; ok || public["authorized_by"] != nil {
			t.Fatalf("the public record says who asked: %v", public)
		}
	})
	// A renewal without a CSR keeps its key. Once that key is revoked for
	// keyCompromise, its holder can neither use nor renew the other
	// certificate: the revocation took it along.
	t.Run("fail/a compromised key's renewal renews no more", func(t *testing.T) {
		first := issue("k.svc.internal")
		code, p, twin := renewWith(t, s, first, "")
		if code != 201 {
			t.Fatalf("renew %d %+v", code, p)
		}
		var v api.CertView
		if resp := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": first.Serial, "reason": "keyCompromise"}, &v); resp.StatusCode != 200 {
			t.Fatalf("revoke %d", resp.StatusCode)
		}
		if len(v.AlsoRevoked) != 1 || v.AlsoRevoked[0] != twin.Serial {
			t.Fatalf("also_revoked %v, want the renewal %s", v.AlsoRevoked, twin.Serial)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		code, p, _ = renewWith(t, s, &twin, `{"csr":`+jsonString(csrPEM(t, key, "k.svc.internal", "k.svc.internal"))+`}`)
		if code != 401 || !strings.Contains(p.Detail, "revoked (keyCompromise)") {
			t.Fatalf("renewal of the key's other certificate: %d %+v", code, p)
		}
	})
	t.Run("ok/a certificate dated ahead by a clock since stepped back renews", func(t *testing.T) {
		s.clock.Step(time.Hour)
		s.advance(t, 0)
		r := issue("ahead.svc.internal")
		s.clock.Step(-time.Hour) // NTP sets the CA's clock right
		s.advance(t, 0)
		code, p, out := renewWith(t, s, r, "")
		if code != 201 {
			t.Fatalf("the service's certificate, not valid yet on any right clock, does not renew: %d %+v", code, p)
		}
		if c := parseCert(t, out.Certificate); c.NotBefore.After(s.clock.Now()) || c.DNSNames[0] != "ahead.svc.internal" {
			t.Fatalf("renewed %v valid from %s", c.DNSNames, c.NotBefore)
		}
	})
	t.Run("fail/csr adds a name", func(t *testing.T) {
		r := issue("b.svc.internal")
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		code, p, _ := renewWith(t, s, r, `{"csr":`+jsonString(csrPEM(t, key, "b.svc.internal", "b.svc.internal", "x.svc.internal"))+`}`)
		if code != 403 || !strings.Contains(p.Detail, "exactly b.svc.internal") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	t.Run("fail/revoked", func(t *testing.T) {
		r := issue("c.svc.internal")
		s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": r.Serial}, nil)
		code, p, _ := renewWith(t, s, r, "")
		if code != 401 || !strings.Contains(p.Detail, "revoked") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	t.Run("fail/foreign CA", func(t *testing.T) {
		other := testutil.CA(t, "ec-p384")
		key := testutil.LeafKey(t, "ec-p256")
		tmpl := &x509.Certificate{SerialNumber: parseCert(t, issue("d.svc.internal").Certificate).SerialNumber, DNSNames: []string{"d.svc.internal"},
			NotBefore: s.clock.Now().Add(-time.Hour), NotAfter: s.clock.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, other.Intermediate, key.Public(), other.Signer)
		if err != nil {
			t.Fatal(err)
		}
		code, p, _ := renewWith(t, s, heldBy(der, key), "")
		if code != 401 || !strings.Contains(p.Detail, "not issued by this CA") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	// A certificate that names our intermediate as issuer (name and key
	// identifier) and carries the serial of one of ours, but is signed by
	// another key: only the exact bytes the CA recorded authenticate.
	t.Run("fail/forged under our issuer name", func(t *testing.T) {
		inter := s.run.CA.Intermediate()
		forger := testutil.CA(t, "ec-p384") // another key than the server's ec-p256 fixture
		fake := *forger.Intermediate
		fake.RawSubject, fake.SubjectKeyId = inter.RawSubject, inter.SubjectKeyId
		key := testutil.LeafKey(t, "ec-p256")
		tmpl := &x509.Certificate{SerialNumber: parseCert(t, issue("h.svc.internal").Certificate).SerialNumber, DNSNames: []string{"h.svc.internal"},
			NotBefore: s.clock.Now().Add(-time.Hour), NotAfter: s.clock.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, &fake, key.Public(), forger.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := x509.ParseCertificate(der); !bytes.Equal(c.RawIssuer, inter.RawSubject) || !bytes.Equal(c.AuthorityKeyId, inter.SubjectKeyId) {
			t.Fatal("the forgery does not name our intermediate")
		}
		code, p, _ := renewWith(t, s, heldBy(der, key), "")
		if code != 401 || !strings.Contains(p.Detail, "no record at this CA") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	t.Run("fail/no client certificate", func(t *testing.T) {
		var p api.Problem
		if resp := s.do(t, "POST", "/v1/renew", "", "", &p); resp.StatusCode != 401 || !strings.Contains(p.Detail, "no client certificate") {
			t.Fatalf("%d %+v", resp.StatusCode, p)
		}
	})
	t.Run("fail/past max_age", func(t *testing.T) {
		r := issue("e.svc.internal")
		s.clock.Advance(90 * time.Minute)
		code, p, out := renewWith(t, s, r, "")
		if code != 201 {
			t.Fatalf("first renewal: %d %+v", code, p)
		}
		s.clock.Advance(91 * time.Minute) // 3h01m after the token issued the first
		code, p, _ = renewWith(t, s, &out, "")
		if code != 403 || !strings.Contains(p.Detail, "max_age") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	t.Run("fail/expired", func(t *testing.T) {
		r := issue("f.svc.internal")
		s.clock.Advance(2*time.Hour + time.Minute)
		code, p, _ := renewWith(t, s, r, "")
		if code != 401 || !strings.Contains(p.Detail, "expired") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	t.Run("fail/role no longer allows the name", func(t *testing.T) {
		r := issue("g.svc.internal")
		at := s.clock.Now()
		s.stop()
		y, _ := os.ReadFile(filepath.Join(dir, "pkid.yaml"))
		os.WriteFile(filepath.Join(dir, "pkid.yaml"), []byte(strings.Replace(string(y), "allowed_domains: [svc.internal]", "allowed_domains: [other.internal]", 1)), 0o644)
		ports2 := testutil.Listen(t)
		s = startServerAt(t, dir, ports2, at)
		code, p, _ := renewWith(t, s, r, "")
		if code != 403 || !strings.Contains(p.Detail, "subdomains of other.internal") {
			t.Fatalf("%d %+v", code, p)
		}
	})
	t.Run("fail/role removed", func(t *testing.T) {
		r := issueIn("tpl", "r.svc.internal")
		at := s.clock.Now()
		s.stop()
		y, _ := os.ReadFile(filepath.Join(dir, "pkid.yaml"))
		os.WriteFile(filepath.Join(dir, "pkid.yaml"), []byte(strings.Replace(string(y), "\n  tpl:\n", "\n  tpl2:\n", 1)), 0o644)
		s = startServerAt(t, dir, testutil.Listen(t), at)
		code, p, _ := renewWith(t, s, r, "")
		if code != 403 || !strings.Contains(p.Detail, `role "tpl" of certificate`) || !strings.Contains(p.Detail, "no longer exists") {
			t.Fatalf("%d %+v", code, p)
		}
	})
}
