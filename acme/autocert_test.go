package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"pkid/ca"
	"pkid/config"
	"pkid/internal/testserver"
	"pkid/internal/testutil"
)

// TestAutocert runs golang.org/x/crypto/acme/autocert unchanged: what a Go
// service embeds to get its own certificate. It answers tls-alpn-01 on its
// TLS listener, the port pkid validates on, and serves pkid's certificate
// from the first handshake on. autocert checks a certificate's validity on
// the real clock, so the test runs a pkid of its own on the system clock
// rather than the package's shared one.
func TestAutocert(t *testing.T) {
	ports := testutil.Listen(t)
	alpn := testutil.FreeAddr(t)
	_, alpnPort, _ := net.SplitHostPort(alpn)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		y = strings.Replace(y, "  tlsalpn01_port: 443\n", "  tlsalpn01_port: "+alpnPort+"\n", 1)
		return strings.Replace(y, "  hosts: {}\n", "  hosts: {auto.internal: 127.0.0.1}\n", 1)
	})
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := testserver.Start(cfg, ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Stop()

	m := &autocert.Manager{
		Prompt: autocert.AcceptTOS, HostPolicy: autocert.HostWhitelist("auto.internal"), Cache: autocert.DirCache(t.TempDir()),
		Client: &xacme.Client{DirectoryURL: ts.Base + "/acme/default/directory", HTTPClient: ts.Client},
	}
	l, err := tls.Listen("tcp", alpn, m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from autocert") })}
	go hs.Serve(l)
	defer hs.Close()

	roots := x509.NewCertPool()
	roots.AddCert(ts.Run.CA.Root())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+alpn+"/", nil)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "auto.internal"}}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("first request (autocert obtains the certificate during the handshake): %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	leaf := resp.TLS.PeerCertificates[0]
	if string(body) != "hello from autocert" || !slices.Equal(leaf.DNSNames, []string{"auto.internal"}) {
		t.Fatalf("answer %q with SANs %v", body, leaf.DNSNames)
	}
	testutil.LintCertificate(t, leaf.Raw)
	rec, err := ts.Run.Store.GetCertificate(ctx, ca.SerialString(leaf.SerialNumber))
	if err != nil || rec.Via != "acme" || rec.Status != "valid" {
		t.Fatalf("record %+v %v", rec, err)
	}
}
