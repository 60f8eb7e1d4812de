package ca_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// FuzzReapplyCRL: a CRL to reapply comes from outside the CA (a relying
// party's copy). Arbitrary bytes, and this CA's own CRL cut or altered,
// never panic; what is refused is refused as malformed or as not this
// CA's, and changes nothing in the store.
func FuzzReapplyCRL(f *testing.F) {
	a, st, _ := newAuthority(f, "ec-p256")
	ctx := context.Background()
	iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: makeCSR(f, testutil.LeafKey(f, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"fuzz.internal"}})})
	if err != nil {
		f.Fatal(err)
	}
	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "superseded"); err != nil {
		f.Fatal(err)
	}
	crl, err := ca.NewCRLPublisher(a, time.Hour, quiet).Generate(ctx, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(crl.DER)
	f.Add(crl.DER[:len(crl.DER)/2])
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		before, err := st.RevocationSeq(ctx, a.IssuerID())
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.ReapplyCRL(ctx, in)
		if err == nil {
			return // this CA's (the worker processes sign seeds of their own)
		}
		if got != nil || (errs.KindOf(err) != errs.Malformed && errs.KindOf(err) != errs.Forbidden) {
			t.Fatalf("refused as %v with %+v: %v", errs.KindOf(err), got, err)
		}
		if n, _ := st.RevocationSeq(ctx, a.IssuerID()); n != before {
			t.Fatalf("refused, yet the store's revocations changed: count %d, was %d", n, before)
		}
	})
}

// FuzzAdopt: whatever bytes an operator's file holds, Adopt answers with
// one of its refusals or records a certificate this CA signed: never a
// panic, never a record of a certificate that does not verify against
// the intermediate, never an internal error.
func FuzzAdopt(f *testing.F) {
	a, st, _ := newAuthority(f, "ec-p256")
	src, _, _ := newAuthority(f, "ec-p256") // same CA, another store
	iss, err := src.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: makeCSR(f, testutil.LeafKey(f, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"fuzz.internal"}})})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(iss.Record.DER)
	f.Add(testutil.CA(f, "ec-p256").Intermediate.Raw)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	inter := testutil.CA(f, "ec-p256").Intermediate
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := a.Adopt(context.Background(), in, "default", "fuzz", false)
		if err != nil {
			if errs.KindOf(err) == errs.Internal {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		c, perr := x509.ParseCertificate(got.Record.DER)
		if perr != nil || c.CheckSignatureFrom(inter) != nil {
			t.Fatalf("adopted %s, which does not verify (%v)", got.Record.Serial, perr)
		}
		if _, err := st.GetCertificate(context.Background(), got.Record.Serial); err != nil {
			t.Fatalf("adopted %s without a record: %v", got.Record.Serial, err)
		}
	})
}
