package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCAURLNotInServerCert: a CA reached by a name its server certificate
// does not carry (made for one name, reached by another) is the usual
// first-deployment mistake. Bootstrap still pins the root, and warns;
// every later command fails, saying which names the certificate has and
// where they are set.
func TestCAURLNotInServerCert(t *testing.T) {
	var rootPEM atomic.Pointer[[]byte]
	fake := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(*rootPEM.Load())
	}))
	defer fake.Close()
	// httptest's certificate is self-signed for example.com, 127.0.0.1 and
	// ::1: its own root, and not for "localhost".
	root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw})
	rootPEM.Store(&root)
	sum := sha256.Sum256(fake.Certificate().Raw)
	byName := strings.Replace(fake.URL, "127.0.0.1", "localhost", 1)
	home := t.TempDir()
	env := []string{"PKID_HOME=" + home}

	r := pkid(t, env, "ca", "bootstrap", "--ca-url", byName, "--fingerprint", hex.EncodeToString(sum[:]))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, "pkid's server certificate is for example.com, *.example.com, 127.0.0.1, ::1") || !strings.Contains(r.stderr, "add localhost to tls.dns_names") {
		t.Fatalf("bootstrap by a name the certificate lacks: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(home, "roots.pem")); err != nil {
		t.Fatalf("root not saved: %v", err)
	}
	if r := pkid(t, env, "ca", "bootstrap", "--ca-url", fake.URL, "--fingerprint", hex.EncodeToString(sum[:])); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("bootstrap by an address the certificate has: %+v", r)
	}
	r = pkid(t, env, "cert", "revoke", "--ca-url", byName, "--token", "a.b", "abcd")
	if r.code != 1 || !strings.Contains(r.stderr, "pkid's server certificate is for example.com, *.example.com, 127.0.0.1, ::1: use one of those in the CA URL") {
		t.Fatalf("a command by a name the certificate lacks: %+v", r)
	}
}
