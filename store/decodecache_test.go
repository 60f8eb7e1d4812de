package store

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestClonesCoverReferenceFields: the clone of each cached type copies
// every slice, map and pointer field (listed here). A field added later
// fails this test until its clone copies it and the list names it;
// otherwise a caller changing it would change the cache.
func TestClonesCoverReferenceFields(t *testing.T) {
	cloned := map[reflect.Type][]string{
		reflect.TypeFor[Token]():         {"SecretHash", "Roles", "Names"},
		reflect.TypeFor[ACMEAccount]():   {"JWK", "Contact"},
		reflect.TypeFor[ACMEOrder]():     {"Identifiers", "AuthzIDs", "Error"},
		reflect.TypeFor[ACMEAuthz]():     {"Challenges"},
		reflect.TypeFor[ACMEChallenge](): {"Error"}, // inside ACMEAuthz.clone
	}
	for typ, names := range cloned {
		var refs []string
		for f := range typ.Fields() {
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
				refs = append(refs, f.Name)
			case reflect.Struct:
				if _, listed := cloned[f.Type]; listed {
					t.Errorf("%s.%s: a struct with reference fields inside; list what its clone copies", typ.Name(), f.Name)
				}
			}
		}
		slices.Sort(refs)
		slices.Sort(names)
		if !slices.Equal(refs, names) {
			t.Errorf("%s: reference fields %v, clone copies %v", typ.Name(), refs, names)
		}
	}
}

// BenchmarkDecodeCache: one read of a validated authorization with three
// challenges, decoded from JSON every time and through decodeCache
// (the bytes unchanged since the last read, as for an account on every
// ACME request, or an authorization polled).
func BenchmarkDecodeCache(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	now := time.Now()
	az := &ACMEAuthz{ID: "az-0123456789abcdef", AccountID: "acct-0123456789abcdef", Role: "default", Identifier: ACMEIdentifier{Type: "dns", Value: "host-123.internal"},
		Status: ACMEValid, Expires: now, ValidatedAt: now}
	for _, typ := range []string{"http-01", "dns-01", "tls-alpn-01"} {
		az.Challenges = append(az.Challenges, ACMEChallenge{Type: typ, Token: "token-0123456789abcdef0123456789abcdef012", Status: ACMEValid, Validated: now})
	}
	if err := s.CreateOrder(context.Background(), &ACMEOrder{ID: "o", AccountID: az.AccountID, Expires: now, AuthzIDs: []string{az.ID}}, []*ACMEAuthz{az}); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, get func(*bolt.Bucket, []byte) (*ACMEAuthz, error)) {
		for b.Loop() {
			if err := s.db.View(func(tx *bolt.Tx) error { _, err := get(tx.Bucket(bAuthzs), []byte(az.ID)); return err }); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("decode", func(b *testing.B) { read(b, getJSON[ACMEAuthz]) })
	b.Run("cached", func(b *testing.B) { read(b, s.authzs.get) })
}
