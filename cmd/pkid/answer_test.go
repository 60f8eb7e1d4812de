package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestRenewRefusesABadAnswer: `pkid cert renew` writes nothing unless the
// CA's 201 holds a certificate with its chain for the key beside it. A
// proxy's page, an answer without a certificate (which used to panic
// after the pair had been overwritten) or a certificate for another key
// fails the command, and the pair on disk stays as it was.
func TestRenewRefusesABadAnswer(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "svc.crt"), filepath.Join(dir, "svc.key")
	certPEM, keyPEM := selfSignedPair(t, "svc.internal")
	os.WriteFile(crt, certPEM, 0o644)
	os.WriteFile(key, keyPEM, 0o600)
	stranger, _ := selfSignedPair(t, "svc.internal")
	for _, tc := range []struct {
		name, body, want string
	}{
		{"fail/not JSON", "<html>proxy</html>", "the answer (HTTP 201, application/json) is not pkid's JSON"},
		{"fail/no certificate", `{}`, "holds no certificate or no chain"},
		{"fail/no chain", testutil.JSON(t, map[string]any{"certificate": string(stranger)}), "holds no certificate or no chain"},
		{"fail/not a certificate", testutil.JSON(t, map[string]any{"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "chain": []string{"x"}}), "the CA's certificate:"},
		{"fail/another key's certificate", testutil.JSON(t, map[string]any{"certificate": string(stranger), "chain": []string{string(stranger)}}), "is not for the key that asked for it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, root := fakeCA(t, tc.body)
			for _, keep := range []bool{false, true} {
				args := []string{"cert", "renew", "--ca-url", url, "--root", root, "--cert", crt, "--key", key}
				if keep {
					args = append(args, "--keep-key")
				}
				r := pkid(t, nil, args...)
				if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("keep-key %v: %+v, want exit 1 saying %q", keep, r, tc.want)
				}
				if c, _ := os.ReadFile(crt); string(c) != string(certPEM) {
					t.Fatal("the certificate file changed")
				}
				if k, _ := os.ReadFile(key); string(k) != string(keyPEM) {
					t.Fatal("the key file changed")
				}
			}
		})
	}
}

// TestSignAndIssueRefuseABadAnswer: cert sign and cert issue write
// nothing from an answer that is not a certificate with its chain for the
// key in question (the CSR's; the key the CA made), and exit 1 saying so.
func TestSignAndIssueRefuseABadAnswer(t *testing.T) {
	stranger, strangerKey := selfSignedPair(t, "svc.internal")
	_, otherKey := selfSignedPair(t, "svc.internal")
	csr, _ := newCSR(t, "svc.internal")
	csrFile := filepath.Join(t.TempDir(), "svc.csr")
	os.WriteFile(csrFile, []byte(csr), 0o644)
	chained := testutil.JSON(t, map[string]any{"certificate": string(stranger), "chain": []string{string(stranger)}})
	for _, tc := range []struct {
		name, cmd, body, want string
	}{
		{"fail/sign: no certificate", "sign", `{}`, "holds no certificate or no chain"},
		{"fail/sign: another key's certificate", "sign", chained, "is not for the key that asked for it"},
		{"fail/issue: no chain", "issue", testutil.JSON(t, map[string]any{"certificate": string(stranger), "private_key": string(strangerKey)}), "holds no certificate or no chain"},
		{"fail/issue: key and certificate not a pair", "issue", testutil.JSON(t, map[string]any{"certificate": string(stranger), "chain": []string{string(stranger)}, "private_key": string(otherKey)}), "are not a pair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, root := fakeCA(t, tc.body)
			out := filepath.Join(t.TempDir(), "out.crt")
			args := []string{"cert", tc.cmd, "--ca-url", url, "--root", root, "--token", "x.y", "--role", "svc", "--out", out}
			if tc.cmd == "sign" {
				args = append(args, "--csr", csrFile)
			} else {
				args = append(args, "--cn", "svc.internal", "--key-out", out+".key")
			}
			r := pkid(t, nil, args...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("%+v, want exit 1 saying %q", r, tc.want)
			}
			for _, f := range []string{out, out + ".key"} {
				if _, err := os.Stat(f); err == nil {
					t.Fatalf("%s written from a bad answer", f)
				}
			}
		})
	}
}

// fakeCA serves body with 201 to every request over TLS, and returns its
// URL and a file holding its certificate (to pass as --root).
func fakeCA(t *testing.T, body string) (url, root string) {
	t.Helper()
	fake := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(body))
	}))
	t.Cleanup(fake.Close)
	root = filepath.Join(t.TempDir(), "root.pem")
	os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw}), 0o644)
	return fake.URL, root
}

// selfSignedPair makes a P-256 key and a self-signed certificate for name,
// both PEM: a pair `pkid cert renew` can load, for a CA that never sees it.
func selfSignedPair(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp
}

// TestBenchRefusesABadAnswer: pkid bench pointed at something that is not
// pkid (here a server answering every request 201 with a page) says so and
// exits 1; the renew and ocsp modes used to panic on the missing chain.
func TestBenchRefusesABadAnswer(t *testing.T) {
	url, root := fakeCA(t, "<html>proxy</html>")
	for _, mode := range []string{"renew", "ocsp"} {
		r := pkid(t, nil, "bench", "--mode", mode, "--ca-url", url, "--root", root, "--token", "x.y", "-c", "1", "-n", "1")
		if r.code != 1 || !strings.Contains(r.stderr, "not an issuance answer") {
			t.Fatalf("bench --mode %s: %+v", mode, r)
		}
	}
}
