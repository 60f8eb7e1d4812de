package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/config"
	"pkid/internal/testutil"
	"pkid/store"
)

// TestCRLCopies: every CRL a publisher stores is copied beside the store,
// and at start a copy numbered above the store's CRL puts its revocations
// back, once; a copy as old as the store's, none, one that is not a CRL
// or not this CA's change nothing and are logged; a copy that cannot be
// written is a warning, and the CRL is stored all the same.
func TestCRLCopies(t *testing.T) {
	ctx := context.Background()
	dir := testutil.CADir(t, "ec-p256", "127.0.0.1:1", "127.0.0.1:2", nil)
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fx := testutil.CA(t, "ec-p256")
	clk := ca.NewFakeClock(time.Now())
	authority := func(st store.Store) *ca.Authority {
		t.Helper()
		a, err := ca.New(ca.Deps{Root: fx.Root, Intermediate: fx.Intermediate, Signer: fx.Signer, Roles: cfg.Roles, Store: st, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	open := func(path string) *store.Bolt {
		t.Helper()
		st, err := store.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st := open(cfg.Resolve(cfg.Storage.Path))
	a := authority(st)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	issuers := []string{a.IssuerID()}
	if w := ReapplyCRLCopies(ctx, cfg, a, issuers, logger); len(w) != 0 || log.Len() != 0 {
		t.Fatalf("ok/no copy yet: %v %s", w, log.String())
	}

	pub := ca.NewCRLPublisher(a, time.Hour, logger)
	pub.Published = keepCRLCopy(cfg, logger)
	if _, err := pub.Generate(ctx, false); err != nil {
		t.Fatal(err)
	}
	iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csrFor(t, "copy.internal")})
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	cur, err := pub.Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	path := CRLCopyPath(cfg, a.IssuerID())
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, cur.DER) {
		t.Fatalf("ok/the copy is the stored CRL: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy mode: %v %v", fi, err)
	}
	if w := ReapplyCRLCopies(ctx, cfg, a, issuers, logger); len(w) != 0 {
		t.Fatalf("ok/a copy as old as the store's CRL: %v", w)
	}

	restored := open(backup)
	b := authority(restored)
	reapply := func() []string { return ReapplyCRLCopies(ctx, cfg, b, issuers, logger) }
	w := reapply()
	if rec, _ := restored.GetCertificate(ctx, iss.Record.Serial); len(w) != 1 || !strings.Contains(w[0], "1 revocation was put back") || rec.Status != store.StatusRevoked || rec.Reason != "superseded" {
		t.Fatalf("ok/a copy newer than the restored store's CRL: %v, record %s (%s)", w, rec.Status, rec.Reason)
	}

	for name, body := range map[string][]byte{"not a CRL": []byte("junk"), "another CA's": otherCRL(t)} {
		log.Reset()
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if w := reapply(); len(w) != 0 || !strings.Contains(log.String(), "CRL copy not put back") {
			t.Fatalf("fail/%s: %v %s", name, w, log.String())
		}
	}

	log.Reset()
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Dir(path), nil, 0o600); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := pub.Generate(ctx, false); err != nil || !strings.Contains(log.String(), "CRL copy not written") {
		t.Fatalf("fail/the copy cannot be written: %v %s", err, log.String())
	}
}

// csrFor is a CSR for name with a fresh P-256 key.
func csrFor(t *testing.T, name string) *x509.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// otherCRL is a CRL of another CA's intermediate.
func otherCRL(t *testing.T) []byte {
	t.Helper()
	o := testutil.CA(t, "ec-p384")
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1 << 62), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, o.Intermediate, o.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
