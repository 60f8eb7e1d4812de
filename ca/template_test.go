package ca_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
)

// orgTemplate adds an organization to the subject and keeps the decided
// names; it fails on request for a name starting with "nope".
const orgTemplate = `{
	"subject": {"commonName": {{ toJson .Subject.CommonName }}, "organization": ["Platform"]},
	{{- range .SANs }}{{ if hasPrefix "nope" .Value }}{{ fail "nope names are not for this role" }}{{ end }}{{ end }}
	"sans": {{ toJson .SANs }},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["serverAuth", "clientAuth"]
}`

func templatedAuthority(t testing.TB, text string) (*ca.Authority, error) {
	t.Helper()
	role := defaultRole()
	role.Renewal = policies.Renewal{Enabled: true, MaxAge: 720 * time.Hour}
	a, _, _, err := buildAuthority(t, "ec-p256", map[string]string{"default": text}, role)
	return a, err
}

// TestRoleTemplate: a role's template shapes the certificate, runs once
// parsed for many certificates, may refuse a request with its own words,
// is still checked against the role, and works for a renewal that keeps
// its key (an unsigned request built from the certificate in use).
func TestRoleTemplate(t *testing.T) {
	a, err := templatedAuthority(t, orgTemplate)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := testutil.LeafKey(t, "ec-p256")
	var last *x509.Certificate
	for i := range 3 {
		csr := makeCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc.internal"}, DNSNames: []string{"svc.internal"}})
		iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr})
		if err != nil {
			t.Fatalf("ok/sign %d: %v", i, err)
		}
		last = parsePEM(t, iss.PEM)
		if len(last.Subject.Organization) != 1 || last.Subject.Organization[0] != "Platform" || last.DNSNames[0] != "svc.internal" {
			t.Fatalf("ok/template not applied: %v %v", last.Subject, last.DNSNames)
		}
		if last.IsCA || !last.NotAfter.Equal(now.Add(24*time.Hour)) {
			t.Fatalf("ok/role decides CA-ness and validity: CA %v notAfter %s", last.IsCA, last.NotAfter)
		}
		testutil.LintCertificate(t, last.Raw)
	}

	// The caller's request is left as it came (x509util would mark the SAN
	// extension critical in it when the subject is empty).
	bare := makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"bare.internal"}})
	if _, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: bare}); err != nil {
		t.Fatalf("ok/empty subject: %v", err)
	}
	for _, e := range bare.Extensions {
		if e.Critical {
			t.Fatalf("the template run changed the caller's CSR: %v critical", e.Id)
		}
	}

	// The template's own refusal, in its words.
	csr := makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"nope.internal"}})
	_, err = a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr})
	if errs.KindOf(err) != errs.Forbidden || !strings.Contains(err.Error(), "nope names are not for this role") {
		t.Fatalf("fail/template refusal: %v", err)
	}

	// Renewal without a new key: the request is built from the certificate
	// in use and carries no signature.
	ren, err := a.Renew(ctx, last, nil)
	if err != nil {
		t.Fatalf("ok/renew with the same key: %v", err)
	}
	if c := parsePEM(t, ren.PEM); c.Subject.Organization[0] != "Platform" || c.SerialNumber.Cmp(last.SerialNumber) == 0 {
		t.Fatalf("ok/renewed certificate %v", c.Subject)
	}
}

// TestRoleTemplateCheckedAgainstRole: whatever the template writes is
// checked against the role before signing.
func TestRoleTemplateCheckedAgainstRole(t *testing.T) {
	cases := map[string]string{
		"fail/ca":         `{"subject": {"commonName": "svc.internal"}, "sans": {{ toJson .SANs }}, "basicConstraints": {"isCA": true, "maxPathLen": 0}}`,
		"fail/other-name": `{"subject": {"commonName": "svc.internal"}, "sans": [{"type": "dns", "value": "evil.example.com"}]}`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			a, err := templatedAuthority(t, text)
			if err != nil {
				t.Fatal(err)
			}
			csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"svc.internal"}})
			if _, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr}); errs.KindOf(err) != errs.Forbidden {
				t.Fatalf("template output signed: %v", err)
			}
		})
	}
}

// TestRoleTemplateSyntax: a template that does not parse stops the
// Authority at start, naming the role.
func TestRoleTemplateSyntax(t *testing.T) {
	_, err := templatedAuthority(t, `{"subject": {{ .Subject `)
	if err == nil || !strings.Contains(err.Error(), "template of role default") {
		t.Fatalf("bad template accepted: %v", err)
	}
}

// TestSetRoles: roles replaced while the CA serves. A set whose template
// does not parse is refused whole and the old set stays; a new set applies
// to the next request, its templates with it; signing goes on, race free,
// while sets are swapped under it.
func TestSetRoles(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	ctx := context.Background()
	key := testutil.LeafKey(t, "ec-p256")
	csr := makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"svc.internal"}})
	org := func(o string) map[string]string {
		return map[string]string{"default": `{"subject": {"commonName": "svc.internal", "organization": "` + o + `"}, "sans": {{ toJson .SANs }}}`}
	}
	if err := a.SetRoles(map[string]*policies.Role{"default": defaultRole()}, map[string]string{"default": "{{ nope"}); err == nil {
		t.Fatal("fail/a template that does not parse was accepted")
	}
	if iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr}); err != nil || len(parsePEM(t, iss.PEM).Subject.Organization) != 0 {
		t.Fatalf("the old set (no template) does not stay: %v", err)
	}
	if err := a.SetRoles(map[string]*policies.Role{"default": defaultRole()}, org("A")); err != nil {
		t.Fatal(err)
	}
	if iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr}); err != nil || parsePEM(t, iss.PEM).Subject.Organization[0] != "A" {
		t.Fatalf("ok/the new set's template: %v", err)
	}
	other := defaultRole()
	other.Name = ""
	if err := a.SetRoles(map[string]*policies.Role{"other": other}, nil); err != nil || a.Role("other").Name != "other" || a.Role("default") != nil {
		t.Fatalf("ok/a set without default: %v", err)
	}
	if _, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr}); errs.KindOf(err) != errs.NotFound || !strings.Contains(errs.DetailOf(err), `unknown role "default" (known: other)`) {
		t.Fatalf("fail/a removed role: %v", err)
	}

	// Swapping sets with different templates while signing: each
	// certificate carries one set's organization.
	a.SetRoles(map[string]*policies.Role{"default": defaultRole()}, org("A"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			a.SetRoles(map[string]*policies.Role{"default": defaultRole()}, org(string(rune('A'+i%2))))
		}
	}()
	for range 50 {
		iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		if o := parsePEM(t, iss.PEM).Subject.Organization; len(o) != 1 || (o[0] != "A" && o[0] != "B") {
			t.Fatalf("organization %v", o)
		}
	}
	<-done
}
