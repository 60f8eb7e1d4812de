package ca_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
)

// FuzzCSRIntake feeds arbitrary bytes through CSR parsing and, when they
// parse, through the whole signing pipeline: never a panic, and never a
// certificate for a request the pipeline should refuse (the final check is
// inside Sign).
func FuzzCSRIntake(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(testutil.FixtureDir(), "csr", "*.pem"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"))
	// An RSA key just over the size refused before the signature check.
	rsaCSR := makeCSR(f, testutil.LeafKey(f, "rsa-2048"), &x509.CertificateRequest{DNSNames: []string{"a.internal"}})
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: testutil.WithRSAModulus(f, rsaCSR.Raw, 4097)}))
	a, _, _ := newAuthority(f, "ec-p256")
	f.Fuzz(func(t *testing.T, in []byte) {
		csr, err := ca.ParseCSR(in)
		if err != nil {
			// A key too large for any role is refused as policy refuses keys
			// (403), before the signature check; anything else is a bad CSR.
			if k := errs.KindOf(err); k != errs.BadCSR && !(k == errs.Forbidden && strings.HasPrefix(errs.DetailOf(err), "key rsa-")) {
				t.Fatalf("parse error of kind %v: %v", k, err)
			}
			return
		}
		iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr})
		if err == nil && iss.Record.Serial == "" {
			t.Fatal("issued without a serial")
		}
	})
}

// FuzzNormalizeSerial: every input that names a serial (REST paths,
// revocation bodies, the CLI) goes through NormalizeSerial. What it accepts
// comes out canonical — lowercase hex, no leading zeros — and stable.
func FuzzNormalizeSerial(f *testing.F) {
	for _, s := range []string{"0a:FF", "00", "-1", "+ff", " 1f ", "", "::", "0x1f", "1_0", "ffffffffffffffffffffffffffffffffffffffffff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := ca.NormalizeSerial(in)
		if err != nil {
			if errs.KindOf(err) != errs.Malformed {
				t.Fatalf("%q: %v is not a malformed-input error", in, err)
			}
			return
		}
		if out == "" || out[0] == '0' || strings.Trim(out, "0123456789abcdef") != "" {
			t.Fatalf("%q -> %q is not canonical", in, out)
		}
		if again, err := ca.NormalizeSerial(out); err != nil || again != out {
			t.Fatalf("%q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
