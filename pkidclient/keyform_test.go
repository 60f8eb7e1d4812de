package pkidclient_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"pkid/pkidclient"
)

// TestMarshalKeyLike: a renewed key keeps the PEM form of the file it
// replaces (SEC1 or PKCS#1 where the key's type has it, PKCS#8 otherwise,
// and for a file whose form is unknown), and parses back to the key.
func TestMarshalKeyLike(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	for _, c := range []struct {
		name string
		key  crypto.Signer
		old  []byte
		want string
	}{
		{"ok/SEC1 after openssl's EC PARAMETERS", ec, append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), "EC PRIVATE KEY"},
		{"ok/PKCS#1", rk, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), "RSA PRIVATE KEY"},
		{"ok/PKCS#8 EC", ec, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}), "PRIVATE KEY"},
		{"ok/Ed25519 has no other form", ed, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "PRIVATE KEY"},
		{"ok/a form of another key type", ec, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("x")}), "PRIVATE KEY"},
		{"fail/no file: PKCS#8", ec, nil, "PRIVATE KEY"},
		{"fail/not PEM: PKCS#8", rk, []byte("junk"), "PRIVATE KEY"},
	} {
		out, err := pkidclient.MarshalKeyLike(c.key, c.old)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, rest := pem.Decode(out)
		if b == nil || len(rest) != 0 || b.Type != c.want {
			t.Fatalf("%s: %q, want one %s block", c.name, out, c.want)
		}
		var got crypto.Signer
		switch b.Type {
		case "EC PRIVATE KEY":
			got, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			got, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			var k any
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
			got, _ = k.(crypto.Signer)
		}
		if err != nil || got == nil || !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.key.Public()) {
			t.Fatalf("%s: does not parse back to the key: %v", c.name, err)
		}
	}
}

// TestRenewKeepsKeyForm: a Source whose key file is SEC1 (as openssl
// writes it) writes its renewed key as SEC1 too, and the pair on disk
// loads.
func TestRenewKeepsKeyForm(t *testing.T) {
	run, roots := startPKID(t)
	crt, keyFile, _ := issueFiles(t, run, "form.svc.internal", 0)
	pair, err := tls.LoadX509KeyPair(crt, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(pair.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := pkidclient.New(context.Background(), pkidclient.Options{CAURL: "https://" + run.HTTPSAddr, Roots: roots, CertFile: crt, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(raw); b == nil || b.Type != "EC PRIVATE KEY" {
		t.Fatalf("the renewed key file: %q", raw)
	}
	renewed, err := tls.LoadX509KeyPair(crt, keyFile)
	if err != nil || renewed.Leaf.SerialNumber.Cmp(pair.Leaf.SerialNumber) == 0 {
		t.Fatalf("the renewed pair: %v", err)
	}
}
