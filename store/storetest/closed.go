package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"pkid/store"
)

// testClosed: once a store is closed (serve shutting down with requests
// in flight; for a networked backend, a database that went away) every
// method fails, and none fails as an answer. A read that cannot read must
// not say "not found" (a replacement claim would pass, an account would
// seem new), an allowance must not say "allowed", and a prune must not say
// "nothing was due".
func testClosed(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	rec := Record("r")
	if err := s.InsertCertificate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(100 * 24 * time.Hour)
	calls := map[string]func() error{
		"InsertCertificate": func() error { return s.InsertCertificate(ctx, Record("r")) },
		"GetCertificate":    func() error { _, err := s.GetCertificate(ctx, rec.Serial); return err },
		"ListCertificates":  func() error { _, _, err := s.ListCertificates(ctx, store.ListFilter{Limit: 10}); return err },
		"UpdateCertificate": func() error {
			_, _, err := s.UpdateCertificate(ctx, rec.Serial, func(*store.CertRecord) error { return nil })
			return err
		},
		"ListRevoked":   func() error { _, err := s.ListRevoked(ctx, "abcd"); return err },
		"RevocationSeq": func() error { _, err := s.RevocationSeq(ctx, "abcd"); return err },
		"UnrecordedRevocation": func() error {
			_, err := s.UnrecordedRevocation(ctx, "abcd", RandomSerial())
			return err
		},
		"AddUnrecordedRevocation": func() error {
			_, err := s.AddUnrecordedRevocation(ctx, "abcd", store.RevokedEntry{Serial: RandomSerial(), RevokedAt: t0, Reason: "superseded", NotAfter: later})
			return err
		},
		"PruneRevoked":      func() error { _, err := s.PruneRevoked(ctx, "abcd", later, later, 10); return err },
		"KeyBlocked":        func() error { _, err := s.KeyBlocked(ctx, rec.KeyHash); return err },
		"PruneCertificates": func() error { _, err := s.PruneCertificates(ctx, later, 10); return err },
		"GetCRL":            func() error { _, err := s.GetCRL(ctx, "abcd"); return err },
		"PutCRL":            func() error { return s.PutCRL(ctx, &store.CRLState{Issuer: "abcd", Number: "1", ThisUpdate: t0}) },
		"PutToken":          func() error { return s.PutToken(ctx, &store.Token{ID: "t1", Roles: []string{"r"}}) },
		"GetToken":          func() error { _, err := s.GetToken(ctx, "t1"); return err },
		"ListTokens":        func() error { _, err := s.ListTokens(ctx); return err },
		"DeleteToken":       func() error { return s.DeleteToken(ctx, "t1") },
		"UseToken":          func() error { return s.UseToken(ctx, "t1", t0) },
		"PruneTokens":       func() error { _, err := s.PruneTokens(ctx, later, 10); return err },
		"TakeAllowance": func() error {
			_, err := s.TakeAllowance(ctx, "token:t1", 5, time.Hour, t0, false)
			return err
		},
		"TakeAllowance spend": func() error {
			_, err := s.TakeAllowance(ctx, "token:t1", 5, time.Hour, t0, true)
			return err
		},
		"PruneAllowances": func() error { _, err := s.PruneAllowances(ctx, later, 10); return err },
	}
	if as, ok := s.(store.ACMEStore); ok {
		id := store.ACMEIdentifier{Type: "dns", Value: "a.internal"}
		for name, f := range map[string]func() error{
			"CreateAccount": func() error {
				return as.CreateAccount(ctx, &store.ACMEAccount{ID: "a1", Role: "r", KeyThumbprint: "th"})
			},
			"GetAccount":      func() error { _, err := as.GetAccount(ctx, "a1"); return err },
			"GetAccountByKey": func() error { _, err := as.GetAccountByKey(ctx, "r", "th"); return err },
			"UpdateAccount": func() error {
				_, err := as.UpdateAccount(ctx, "a1", func(*store.ACMEAccount) error { return nil })
				return err
			},
			"CreateOrder": func() error { return as.CreateOrder(ctx, &store.ACMEOrder{ID: "o1", AccountID: "a1"}, nil) },
			"GetOrder":    func() error { _, err := as.GetOrder(ctx, "o1"); return err },
			"UpdateOrder": func() error {
				_, err := as.UpdateOrder(ctx, "o1", func(*store.ACMEOrder) error { return nil })
				return err
			},
			"ListOrders": func() error { _, _, err := as.ListOrders(ctx, "a1", "", 10); return err },
			"UnfinishedOrders": func() error {
				_, _, err := as.UnfinishedOrders(ctx, "a1", t0, 10)
				return err
			},
			"AccountsFrom": func() error {
				_, _, err := as.AccountsFrom(ctx, "10.0.0.1", t0, 10)
				return err
			},
			"GetAuthz": func() error { _, err := as.GetAuthz(ctx, "z1"); return err },
			"UpdateAuthz": func() error {
				_, err := as.UpdateAuthz(ctx, "z1", func(*store.ACMEAuthz) error { return nil })
				return err
			},
			"FindValidAuthz": func() error {
				_, err := as.FindValidAuthz(ctx, "a1", id, false, t0, t0)
				return err
			},
			"PruneACME":        func() error { _, err := as.PruneACME(ctx, later, 10); return err },
			"ReplacementOrder": func() error { _, err := as.ReplacementOrder(ctx, rec.Serial); return err },
			"ClaimReplacement": func() error { return as.ClaimReplacement(ctx, rec.Serial, "", "o1") },
			"PutEABKey":        func() error { return as.PutEABKey(ctx, &store.EABKey{KID: "k1", Role: "r"}) },
			"GetEABKey":        func() error { _, err := as.GetEABKey(ctx, "k1"); return err },
			"UseEABKey":        func() error { return as.UseEABKey(ctx, "k1", "a1", t0) },
		} {
			calls[name] = f
		}
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if err == nil {
				t.Fatal("succeeded on a closed store")
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("closed store answered not found: %v", err)
			}
		})
	}
}
