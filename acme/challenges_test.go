package acme_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func challengeOf(t *testing.T, c *rawClient, authzURL, typ string) (string, authzObj) {
	t.Helper()
	var az authzObj
	c.post(authzURL, nil).json(t, &az)
	for _, ch := range az.Challenges {
		if ch.Type == typ {
			return ch.URL, az
		}
	}
	return "", az
}

func TestDNS01WrongValue(t *testing.T) {
	c := newRaw(t, "wild")
	c.register()
	_, o := c.newOrder("txt.wild.internal")
	u, _ := challengeOf(t, c, o.Authorizations[0], "dns-01")
	srv.dns.set("_acme-challenge.txt.wild.internal", "not-the-digest")
	c.post(u, map[string]any{})
	az := c.waitAuthz(o.Authorizations[0])
	if d := az.errorOf("dns-01"); az.Status != "invalid" || !strings.Contains(d, "_acme-challenge.txt.wild.internal") {
		t.Fatalf("authz %s, error %q", az.Status, d)
	}
}

// TestDNS01ThroughCNAME: _acme-challenge delegated by CNAME to another
// zone (the acme-dns pattern) validates with the TXT record at the target.
func TestDNS01ThroughCNAME(t *testing.T) {
	c := newRaw(t, "wild")
	c.register()
	_, o := c.newOrder("deleg.wild.internal")
	u, az := challengeOf(t, c, o.Authorizations[0], "dns-01")
	var token string
	for _, ch := range az.Challenges {
		if ch.Type == "dns-01" {
			token = ch.Token
		}
	}
	sum := sha256.Sum256([]byte(token + "." + c.thumbprint()))
	srv.dns.delegate("_acme-challenge.deleg.wild.internal", "deleg.auth.acme-dns.example")
	srv.dns.set("deleg.auth.acme-dns.example", "an older value", base64.RawURLEncoding.EncodeToString(sum[:]))
	c.post(u, map[string]any{})
	if az := c.waitAuthz(o.Authorizations[0]); az.Status != "valid" {
		t.Fatalf("authz %s, error %q", az.Status, az.errorOf("dns-01"))
	}
}

// TestValidationFailures: a validation that cannot reach its answer is
// recorded as a problem of the right type, saying what was looked up or
// dialled: dns for dns-01 with no TXT record and for http-01 to a name
// that does not resolve, connection for http-01 where nobody listens.
func TestValidationFailures(t *testing.T) {
	for _, tc := range []struct{ name, role, ident, chal, problem, detail string }{
		{"fail/dns-01 no TXT", "wild", "none.wild.internal", "dns-01", "dns", "_acme-challenge.none.wild.internal"},
		{"fail/http-01 no address", "default", "host.nxdomain.internal", "http-01", "dns", "host.nxdomain.internal"},
		{"fail/http-01 nobody listening", "default", "down.internal", "http-01", "connection", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, tc.role)
			c.register()
			_, o := c.newOrder(tc.ident)
			u, _ := challengeOf(t, c, o.Authorizations[0], tc.chal)
			c.post(u, map[string]any{})
			az := c.waitAuthz(o.Authorizations[0])
			if typ, d := az.problemOf(tc.chal); az.Status != "invalid" || typ != "urn:ietf:params:acme:error:"+tc.problem || !strings.Contains(d, tc.detail) {
				t.Fatalf("authz %s, error %s %q", az.Status, typ, d)
			}
			// The CA asks for exactly the name it validates, never that
			// name under one of its own host's search domains.
			if tc.problem == "dns" {
				if more := srv.dns.askedBelow(tc.detail); len(more) > 0 {
					t.Fatalf("the CA also asked for %q", more)
				}
			}
		})
	}
}

// TestHTTP01Answers: what an http-01 responder may answer besides the key
// authorization, each refused with a problem that says what came back.
func TestHTTP01Answers(t *testing.T) {
	for _, tc := range []struct {
		name, problem, detail string
		h                     http.Handler
	}{
		{"fail/404", "unauthorized", "HTTP 404, want 200 with the key authorization", http.NotFoundHandler()},
		{"fail/redirect loop", "connection", "more than 10 redirects", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := serveHTTP01Handler(t, tc.h)
			defer stop()
			c := newRaw(t, "default")
			c.register()
			_, o := c.newOrder("answers.internal")
			u, _ := challengeOf(t, c, o.Authorizations[0], "http-01")
			c.post(u, map[string]any{})
			az := c.waitAuthz(o.Authorizations[0])
			if typ, d := az.problemOf("http-01"); az.Status != "invalid" || typ != "urn:ietf:params:acme:error:"+tc.problem || !strings.Contains(d, tc.detail) {
				t.Fatalf("authz %s, error %s %q", az.Status, typ, d)
			}
		})
	}
}

// TestLookupsAskTheConfiguredServer: with acme.resolver set, every
// validation lookup goes to it, even for a name the CA host's /etc/hosts
// knows ("localhost" is in every hosts file).
func TestLookupsAskTheConfiguredServer(t *testing.T) {
	c := newRaw(t, "bare")
	c.register()
	_, o := c.newOrder("localhost")
	stop := serveHTTP01(t, func(token string) string { return token + "." + c.thumbprint() })
	defer stop()
	u, _ := challengeOf(t, c, o.Authorizations[0], "http-01")
	c.post(u, map[string]any{})
	if az := c.waitAuthz(o.Authorizations[0]); az.Status != "valid" {
		t.Fatalf("authz %+v", az)
	}
	if !slices.Contains(srv.dns.askedNames(), "localhost.") {
		t.Fatal("the DNS server was never asked for localhost: the answer came from somewhere else")
	}
}

func TestWildcardOnlyByDNS01(t *testing.T) {
	c := newRaw(t, "wild")
	c.register()
	_, o := c.newOrder("*.only.wild.internal")
	u, az := challengeOf(t, c, o.Authorizations[0], "http-01")
	if u != "" || !az.Wildcard || az.Identifier.Value != "only.wild.internal" {
		t.Fatalf("wildcard authz %+v", az)
	}
	if a := c.post(srv.base+"/acme/wild/chall/"+o.Authorizations[0][strings.LastIndex(o.Authorizations[0], "/")+1:]+"/http-01", map[string]any{}); a.status != 404 {
		t.Fatalf("fail/wildcard with http-01: %d", a.status)
	}
	d := newRaw(t, "default")
	d.register()
	if typ, _ := d.post(d.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "*.x.internal"}}}).problem(t); typ != "rejectedIdentifier" {
		t.Fatalf("fail/wildcard where the role forbids it: %s", typ)
	}
}

func TestIPNeverByDNS01(t *testing.T) {
	c := newRaw(t, "wild")
	c.register()
	_, o := c.newOrder("127.0.0.1")
	if u, _ := challengeOf(t, c, o.Authorizations[0], "dns-01"); u != "" {
		t.Fatal("fail/IP offered dns-01")
	}
	if u, _ := challengeOf(t, c, o.Authorizations[0], "tls-alpn-01"); u == "" {
		t.Fatal("ok/IP offered tls-alpn-01")
	}
}

// TestTLSALPNMissingExtension: a server that negotiates acme-tls/1 but
// presents a certificate without the acmeIdentifier extension fails.
func TestTLSALPNMissingExtension(t *testing.T) {
	c := newRaw(t, "wild")
	c.register()
	_, o := c.newOrder("noext.wild.internal")
	u, _ := challengeOf(t, c, o.Authorizations[0], "tls-alpn-01")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"noext.wild.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, &x509.Certificate{SerialNumber: big.NewInt(1)}, key.Public(), key)
	l, err := tls.Listen("tcp", "127.0.0.1:"+strconv.Itoa(srv.tlsPort), &tls.Config{NextProtos: []string{"acme-tls/1"},
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	c.post(u, map[string]any{})
	az := c.waitAuthz(o.Authorizations[0])
	detail := az.errorOf("tls-alpn-01")
	if az.Status != "invalid" || !strings.Contains(detail, "acmeIdentifier") {
		t.Fatalf("authz %s, error %q", az.Status, detail)
	}
}

// TestAuthzReuse: with acme.authz_reuse set, a valid authorization serves
// the same account's next order at once, and never another account's.
func TestAuthzReuse(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := c.serveKeyAuth()
	defer stop()
	_, o := c.newOrder("c.internal")
	u, _ := challengeOf(t, c, o.Authorizations[0], "http-01")
	c.post(u, map[string]any{})
	if az := c.waitAuthz(o.Authorizations[0]); az.Status != "valid" {
		t.Fatal(az.Status)
	}
	_, again := c.newOrder("c.internal")
	if again.Status != "ready" || again.Authorizations[0] != o.Authorizations[0] {
		t.Fatalf("ok/reuse: %+v", again)
	}
	other := newRaw(t, "default")
	other.register()
	if _, theirs := other.newOrder("c.internal"); theirs.Status != "pending" {
		t.Fatalf("fail/another account reused it: %s", theirs.Status)
	}
}

// TestValidationNeverLinkLocal: a name whose record points at the
// link-local range (a cloud metadata service), or an answer that redirects
// there, does not make the CA connect; each challenge fails with a
// connection problem that says why.
func TestValidationNeverLinkLocal(t *testing.T) {
	for _, tc := range []struct{ name, typ, redirect string }{
		{"fail/http-01 to a link-local record", "http-01", ""},
		{"fail/tls-alpn-01 to a link-local record", "tls-alpn-01", ""},
		{"fail/http-01 redirected to a name with a link-local record", "http-01", "http://md.linklocal.wild.internal:" + strconv.Itoa(srv.httpPort) + "/latest/meta-data/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, "wild")
			c.register()
			ident, want := "md.linklocal.wild.internal", "md.linklocal.wild.internal resolves to 169.254.169.254, a link-local address"
			if tc.redirect != "" {
				stop := serveHTTP01Redirect(t, tc.redirect)
				defer stop()
				ident = "redirects.wild.internal"
			}
			_, o := c.newOrder(ident)
			u, _ := challengeOf(t, c, o.Authorizations[0], tc.typ)
			c.post(u, map[string]any{})
			az := c.waitAuthz(o.Authorizations[0])
			if typ, detail := az.problemOf(tc.typ); az.Status != "invalid" || !strings.HasSuffix(typ, ":connection") || !strings.Contains(detail, want) {
				t.Fatalf("authz %s, error %s %q", az.Status, typ, detail)
			}
		})
	}
}

// TestHTTP01RedirectPolicy: http-01 follows a redirect to a host its role
// could certify itself (a central responder under the same domains), and
// refuses one to any other host, name or address, before connecting.
func TestHTTP01RedirectPolicy(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	port := strconv.Itoa(srv.httpPort)
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var target string // where a.internal's answers redirect to
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		if strings.HasPrefix(r.Host, "responder.internal") {
			w.Write([]byte(tok + "." + c.thumbprint()))
			return
		}
		mu.Lock()
		defer mu.Unlock()
		http.Redirect(w, r, strings.ReplaceAll(target, "TOKEN", tok), http.StatusFound)
	})}
	go hs.Serve(l)
	defer hs.Close()
	for i, tc := range []struct{ name, target, want string }{
		{"ok/to a responder the role could certify", "http://responder.internal:" + port + "/.well-known/acme-challenge/TOKEN", ""},
		{"fail/to a name outside the role", "http://intranet.example:" + port + "/TOKEN", `intranet.example is not a name role "default" could certify`},
		{"fail/to an address outside the role", "http://10.9.9.9:" + port + "/TOKEN", `10.9.9.9 is not a name role "default" could certify`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			target = tc.target
			mu.Unlock()
			_, o := c.newOrder("r" + strconv.Itoa(i) + ".internal")
			u, _ := challengeOf(t, c, o.Authorizations[0], "http-01")
			c.post(u, map[string]any{})
			az := c.waitAuthz(o.Authorizations[0])
			if tc.want == "" {
				if az.Status != "valid" {
					t.Fatalf("authz %s, error %q", az.Status, az.errorOf("http-01"))
				}
				return
			}
			if typ, detail := az.problemOf("http-01"); az.Status != "invalid" || !strings.HasSuffix(typ, ":connection") || !strings.Contains(detail, tc.want) {
				t.Fatalf("authz %s, error %s %q", az.Status, typ, detail)
			}
		})
	}
}

// TestHTTP01RedirectToOtherPort: a redirect away from the validation port
// is not followed; the authorization becomes invalid.
func TestHTTP01RedirectToOtherPort(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := serveHTTP01Redirect(t, "http://a.internal:1/elsewhere")
	defer stop()
	_, o := c.newOrder("a.internal")
	u, _ := challengeOf(t, c, o.Authorizations[0], "http-01")
	c.post(u, map[string]any{})
	az := c.waitAuthz(o.Authorizations[0])
	detail := az.errorOf("http-01")
	if az.Status != "invalid" || !strings.Contains(detail, "not allowed") {
		t.Fatalf("authz %s, error %q", az.Status, detail)
	}
}
