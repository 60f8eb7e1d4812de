package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
	"pkid/store/storetest"
)

// loadRevoked inserts n revoked records of a's issuer (through the group
// commit, 64 writers) so CRL generation has realistic input.
func loadRevoked(b *testing.B, st store.Store, issuer string, n int) {
	loadRevokedUntil(b, st, issuer, n, now.Add(24*time.Hour))
}

// loadRevokedUntil is loadRevoked with the certificates' notAfter.
func loadRevokedUntil(b *testing.B, st store.Store, issuer string, n int, notAfter time.Time) {
	b.Helper()
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ch {
				r := storetest.Record("default")
				r.Issuer, r.Status, r.RevokedAt, r.Reason = issuer, store.StatusRevoked, now, "keyCompromise"
				r.NotAfter = notAfter
				if err := st.InsertCertificate(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

func BenchmarkCRLGenerate(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			tc := testutil.CA(b, "ec-p256")
			st, err := store.OpenBolt(filepath.Join(b.TempDir(), "pkid.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			a, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: map[string]*policies.Role{"default": defaultRole()}, Store: st, Clock: ca.NewFakeClock(now), Log: quiet})
			if err != nil {
				b.Fatal(err)
			}
			loadRevoked(b, st, a.IssuerID(), n)
			p := ca.NewCRLPublisher(a, 24*time.Hour, quiet)
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Generate(context.Background(), false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCRLAfterExpiry: 100,000 revoked certificates expired, 1,000
// still valid. Once a scheduled CRL has listed the expired ones after
// their notAfter it prunes them from the store's CRL list, and each CRL
// after costs what is on it (compare entries=10000 above), not every
// revocation ever made.
func BenchmarkCRLAfterExpiry(b *testing.B) {
	tc := testutil.CA(b, "ec-p256")
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "pkid.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clk := ca.NewFakeClock(now)
	a, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: map[string]*policies.Role{"default": defaultRole()}, Store: st, Clock: clk, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	loadRevokedUntil(b, st, a.IssuerID(), 100_000, now.Add(time.Hour))
	loadRevokedUntil(b, st, a.IssuerID(), 1_000, now.Add(30*24*time.Hour))
	p := ca.NewCRLPublisher(a, 24*time.Hour, quiet)
	ctx := context.Background()
	clk.Advance(2 * time.Hour)
	if _, err := p.Generate(ctx, true); err != nil { // lists all 101,000
		b.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	st2, err := p.Generate(ctx, true) // lists 1,000
	if err != nil {
		b.Fatal(err)
	}
	ca.Prune(p, ctx, st2.ThisUpdate) // as Run does after a scheduled CRL
	if list, _ := st.ListRevoked(ctx, a.IssuerID()); len(list) != 1_000 {
		b.Fatalf("%d entries left after pruning, want 1,000", len(list))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Generate(ctx, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOCSP(b *testing.B) {
	a, _, _ := newAuthority(b, "ec-p256")
	ctx := context.Background()
	o, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		b.Fatal(err)
	}
	iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: makeCSR(b, testutil.LeafKey(b, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "o.internal"}})})
	if err != nil {
		b.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(iss.Record.DER)
	req, _ := ocsp.CreateRequest(leaf, a.Intermediate(), nil)
	b.Run("cached", func(b *testing.B) {
		o.Respond(ctx, req)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				o.Respond(ctx, req)
			}
		})
	})
	// Uncached: a new serial each time, so every answer is looked up and
	// signed.
	b.Run("uncached", func(b *testing.B) {
		fake := *leaf
		for i := 0; b.Loop(); i++ {
			fake.SerialNumber = new(big.Int).SetInt64(int64(i) + 1)
			r, _ := ocsp.CreateRequest(&fake, a.Intermediate(), nil)
			o.Respond(ctx, r)
		}
	})
}

// BenchmarkSign is the whole in-process pipeline per CA key type: policy,
// template, final check, x509.CreateCertificate and the durable commit
// (32 concurrent signers share commits); "template" is an ec-p256 CA
// whose role has an x509util template.
func BenchmarkSign(b *testing.B) {
	for _, kt := range testutil.KeyTypes {
		b.Run(kt, func(b *testing.B) {
			a, _, _ := newAuthority(b, kt)
			signParallel(b, a)
		})
	}
	b.Run("template", func(b *testing.B) {
		a, err := templatedAuthority(b, orgTemplate)
		if err != nil {
			b.Fatal(err)
		}
		signParallel(b, a)
	})
}

// signParallel signs one CSR for the default role from 16 goroutines per
// core until b is done.
func signParallel(b *testing.B, a *ca.Authority) {
	csr := makeCSR(b, testutil.LeafKey(b, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench.internal"}})
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIssue is /v1/issue's part in the CA for an ec-p256 CA: a key of
// each cheap type made, its request built, signed and committed (32
// concurrent issuers share commits).
func BenchmarkIssue(b *testing.B) {
	for _, kt := range []string{"ec-p256", "ed25519"} {
		b.Run(kt, func(b *testing.B) {
			a, _, _ := newAuthority(b, "ec-p256")
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := a.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default"}, KeyType: kt, CommonName: "bench.internal"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReapplyCRL puts back a CRL of 10,000 entries into a store that
// holds them all valid: what serve does at start after a restore from a
// backup (its CRL copy) and `pkid cert revoke --from-crl` does by hand.
// Serve is not ready until it is done.
func BenchmarkReapplyCRL(b *testing.B) {
	const n = 10_000
	tc := testutil.CA(b, "ec-p256")
	issuer := hex.EncodeToString(tc.Intermediate.SubjectKeyId)
	src := filepath.Join(b.TempDir(), "src.db")
	st, err := store.OpenBolt(src)
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]x509.RevocationListEntry, n)
	var wg sync.WaitGroup
	for w := range 64 { // through the group commit
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				r := storetest.Record("default")
				r.Issuer, r.NotAfter = issuer, now.Add(24*time.Hour)
				if err := st.InsertCertificate(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
				sn, _ := new(big.Int).SetString(r.Serial, 16)
				entries[i] = x509.RevocationListEntry{SerialNumber: sn, RevocationTime: now, ReasonCode: ca.Reasons["superseded"]}
			}
		})
	}
	wg.Wait()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(now.UnixNano()), ThisUpdate: now, NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries}, tc.Intermediate, tc.Signer)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "pkid.db")
		copyFile(b, src, path)
		st, err := store.OpenBolt(path)
		if err != nil {
			b.Fatal(err)
		}
		a, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: map[string]*policies.Role{"default": defaultRole()}, Store: st, Clock: ca.NewFakeClock(now), Log: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if got, err := a.ReapplyCRL(context.Background(), der); err != nil || len(got.Revoked) != n {
			b.Fatalf("%v", err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/entry")
}

// copyFile copies the file from to the new file to.
func copyFile(b *testing.B, from, to string) {
	b.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		b.Fatal(err)
	}
}
