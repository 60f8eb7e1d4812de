package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	zacme "github.com/mholt/acmez/v3/acme"

	"pkid/internal/testutil"
)

// caddySolver answers http-01 or tls-alpn-01 the way Caddy does, through
// acmez's Solver interface, on the ports the test server validates.
type caddySolver struct {
	typ string
	mu  sync.Mutex
	// http-01: path -> key authorization; tls-alpn-01: name -> certificate.
	http  map[string]string
	certs map[string]*tls.Certificate
}

func (s *caddySolver) Present(_ context.Context, ch zacme.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.typ == zacme.ChallengeTypeHTTP01 {
		s.http[ch.HTTP01ResourcePath()] = ch.KeyAuthorization
		return nil
	}
	cert, err := acmez.TLSALPN01ChallengeCert(ch)
	s.certs[ch.Identifier.Value] = cert
	return err
}

func (s *caddySolver) CleanUp(_ context.Context, ch zacme.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.http, ch.HTTP01ResourcePath())
	delete(s.certs, ch.Identifier.Value)
	return nil
}

// start listens on the port pkid validates this challenge type on.
func (s *caddySolver) start(t *testing.T) {
	t.Helper()
	s.http, s.certs = map[string]string{}, map[string]*tls.Certificate{}
	port := srv.httpPort
	if s.typ == zacme.ChallengeTypeTLSALPN01 {
		port = srv.tlsPort
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if s.typ == zacme.ChallengeTypeHTTP01 {
		hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			ka, ok := s.http[r.URL.Path]
			s.mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Write([]byte(ka))
		})}
		go hs.Serve(l)
		return
	}
	cfg := &tls.Config{NextProtos: []string{acmez.ACMETLS1Protocol}, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c := s.certs[h.ServerName]; c != nil {
			return c, nil
		}
		return nil, errors.New("no challenge for " + h.ServerName)
	}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				tc.HandshakeContext(context.Background())
				tc.Close()
			}()
		}
	}()
}

// TestCaddyACME runs acmez, Caddy's ACME client, unchanged against pkid
// with each of the two challenge types Caddy solves by default: account,
// order, validation, finalize, the chain, and revocation.
func TestCaddyACME(t *testing.T) {
	for _, typ := range []string{zacme.ChallengeTypeHTTP01, zacme.ChallengeTypeTLSALPN01} {
		t.Run(typ, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			solver := &caddySolver{typ: typ}
			solver.start(t)
			c := acmez.Client{
				Client: &zacme.Client{Directory: srv.dirURL("default"), HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: srv.client.Transport},
					PollInterval: 50 * time.Millisecond},
				ChallengeSolvers: map[string]acmez.Solver{typ: solver},
			}
			accountKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			account, err := c.NewAccount(ctx, zacme.Account{Contact: []string{"mailto:ops@example.internal"}, TermsOfServiceAgreed: true, PrivateKey: accountKey})
			if err != nil {
				t.Fatalf("new account: %v", err)
			}
			certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			certs, err := c.ObtainCertificateForSANs(ctx, account, certKey, []string{"a.internal", "c.internal"})
			if err != nil {
				t.Fatalf("obtain: %v", err)
			}
			if len(certs) != 1 {
				t.Fatalf("%d chains offered, want 1", len(certs))
			}
			var chain []*x509.Certificate
			for rest := certs[0].ChainPEM; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				chain = append(chain, mustParse(t, b.Bytes))
			}
			if len(chain) != 2 || !chain[1].Equal(srv.run.CA.Intermediate()) {
				t.Fatalf("chain of %d, want leaf and intermediate", len(chain))
			}
			leaf := chain[0]
			testutil.LintCertificate(t, leaf.Raw)
			roots := x509.NewCertPool()
			roots.AddCert(srv.run.CA.Root())
			inter := x509.NewCertPool()
			inter.AddCert(chain[1])
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "a.internal", CurrentTime: srv.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if err := c.RevokeCertificate(ctx, account, leaf, nil, 4); err != nil { // superseded
				t.Fatalf("revoke: %v", err)
			}
			rec, err := srv.run.Store.GetCertificate(ctx, strings.ToLower(leaf.SerialNumber.Text(16)))
			if err != nil || rec.Status != "revoked" || rec.Reason != "superseded" || rec.Via != "acme" {
				t.Fatalf("record %+v %v", rec, err)
			}
		})
	}
}

// TestCaddyEAB: Caddy's `eab <key_id> <mac_key>` (acmez binds the account
// key with the base64url MAC key `pkid acme eab create` prints), on a role
// that requires a binding: without one, with a wrong MAC key, and with
// the key already bound to another account, each is refused with the
// problem that names it; the right one registers and can order.
func TestCaddyEAB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kid, macKey, err := srv.eab.Create(ctx, "eab")
	if err != nil {
		t.Fatal(err)
	}
	client := &zacme.Client{Directory: srv.dirURL("eab"), HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: srv.client.Transport}}
	register := func(eab *zacme.EAB) (zacme.Account, error) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		acct := zacme.Account{TermsOfServiceAgreed: true, PrivateKey: key}
		if eab != nil {
			if err := acct.SetExternalAccountBinding(ctx, client, *eab); err != nil {
				t.Fatal(err)
			}
		}
		return client.NewAccount(ctx, acct)
	}
	wrong := make([]byte, 32)
	rand.Read(wrong)
	for _, tc := range []struct {
		name string
		eab  *zacme.EAB
		typ  string
		says string
	}{
		{"fail/no binding", nil, "externalAccountRequired", ""},
		{"fail/wrong MAC key", &zacme.EAB{KeyID: kid, MACKey: base64.RawURLEncoding.EncodeToString(wrong)}, "unauthorized", "MAC does not verify"},
		{"fail/unknown key id", &zacme.EAB{KeyID: "nope", MACKey: macKey}, "unauthorized", "unknown external account binding key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := register(tc.eab)
			var p zacme.Problem
			if !errors.As(err, &p) || p.Type != "urn:ietf:params:acme:error:"+tc.typ || !strings.Contains(p.Detail, tc.says) {
				t.Fatalf("got %v, want %s saying %q", err, tc.typ, tc.says)
			}
		})
	}
	acct, err := register(&zacme.EAB{KeyID: kid, MACKey: macKey})
	if err != nil || acct.Status != zacme.StatusValid {
		t.Fatalf("ok/binding: %+v %v", acct, err)
	}
	if _, err := client.NewOrder(ctx, acct, zacme.Order{Identifiers: []zacme.Identifier{{Type: "dns", Value: "caddy.eab.internal"}}}); err != nil {
		t.Fatalf("ok/the bound account orders: %v", err)
	}
	_, err = register(&zacme.EAB{KeyID: kid, MACKey: macKey})
	var p zacme.Problem
	if !errors.As(err, &p) || p.Type != "urn:ietf:params:acme:error:unauthorized" || !strings.Contains(p.Detail, "already used") {
		t.Fatalf("fail/the key binds a second account: %v", err)
	}
}
