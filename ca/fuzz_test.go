package ca_test

import (
	"context"
	"os"
	"path/filepath"
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
	a, _, _ := newAuthority(f, "ec-p256")
	f.Fuzz(func(t *testing.T, in []byte) {
		csr, err := ca.ParseCSR(in)
		if err != nil {
			if errs.KindOf(err) != errs.BadCSR {
				t.Fatalf("parse error of kind %v: %v", errs.KindOf(err), err)
			}
			return
		}
		iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr})
		if err == nil && iss.Record.Serial == "" {
			t.Fatal("issued without a serial")
		}
	})
}
