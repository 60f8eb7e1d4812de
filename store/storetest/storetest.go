// Package storetest is the conformance suite every store.Store backend must
// pass. Backends call Run from their own tests with an Opener that opens the
// same database each time it is called, so durability across close and
// reopen is tested too.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pkid/store"
)

// Opener opens the backend under test; each call opens the same database.
type Opener func(t *testing.T) store.Store

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// RandomSerial returns a fresh positive 128-bit serial in store form.
func RandomSerial() string {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", n.Add(n, big.NewInt(1)))
}

// Record makes a realistic record for role with a random serial.
func Record(role string) *store.CertRecord {
	s := RandomSerial()
	return &store.CertRecord{
		Serial: s, Issuer: "abcd", Role: role, Names: []string{s[:8] + ".internal"},
		NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), DER: make([]byte, 600),
		KeyHash: "k" + s, Status: store.StatusValid, Requester: "token:test", Via: "api",
		AuthorizedAt: t0, CreatedAt: t0,
	}
}

// maxPages bounds the pages a listing follows before a test calls its
// cursor endless: room for a store that reads only a few records a call.
const maxPages = 10_000

// ListAll follows f's listing through every page and returns the records,
// oldest first.
func ListAll(t testing.TB, s store.Store, f store.ListFilter) []*store.CertRecord {
	t.Helper()
	var out []*store.CertRecord
	for pages := 0; ; pages++ {
		if pages > maxPages {
			t.Fatalf("listing %+v: the cursor never ends", f)
		}
		page, next, err := s.ListCertificates(context.Background(), f)
		if err != nil {
			t.Fatalf("listing %+v: %v", f, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		f.Cursor = next
	}
}

// Insert commits n records of role to s, one by one, and returns their
// serials in order.
func Insert(t testing.TB, s store.Store, role string, n int) []string {
	t.Helper()
	serials := make([]string, n)
	for i := range serials {
		rec := Record(role)
		if err := s.InsertCertificate(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		serials[i] = rec.Serial
	}
	return serials
}

// Revoke marks the record of serial revoked at at for reason, as ca.Revoke
// does through UpdateCertificate.
func Revoke(t testing.TB, s store.Store, serial string, at time.Time, reason string) {
	t.Helper()
	if _, _, err := s.UpdateCertificate(context.Background(), serial, func(r *store.CertRecord) error {
		r.Status, r.RevokedAt, r.Reason = store.StatusRevoked, at, reason
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// InsertConcurrently commits workers × each records of role to s from
// workers goroutines, and returns the first error any of them met (each
// stops at its own first).
func InsertConcurrently(ctx context.Context, s store.Store, role string, workers, each int) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Go(func() {
			for range each {
				if err := s.InsertCertificate(ctx, Record(role)); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// Run runs every conformance test against the backend.
func Run(t *testing.T, open Opener) {
	t.Run("certificates", func(t *testing.T) { testCertificates(t, open) })
	t.Run("list", func(t *testing.T) { testList(t, open) })
	t.Run("list by status", func(t *testing.T) { testListStatus(t, open) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, open) })
	t.Run("revocation of a compromised key", func(t *testing.T) { testSameKey(t, open) })
	t.Run("crl", func(t *testing.T) { testCRL(t, open) })
	t.Run("revocation count", func(t *testing.T) { testRevocationSeq(t, open) })
	t.Run("prune revoked", func(t *testing.T) { testPruneRevoked(t, open) })
	t.Run("unrecorded revocations", func(t *testing.T) { testUnrecorded(t, open) })
	t.Run("tokens", func(t *testing.T) { testTokens(t, open) })
	t.Run("prune tokens", func(t *testing.T) { testPruneTokens(t, open) })
	t.Run("concurrent", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("allowances", func(t *testing.T) { testAllowances(t, open) })
	t.Run("closed", func(t *testing.T) { testClosed(t, open) })
}

func testCertificates(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	rec := Record("default")
	if err := s.InsertCertificate(ctx, rec); err != nil {
		t.Fatalf("ok/insert: %v", err)
	}
	got, err := s.GetCertificate(ctx, rec.Serial)
	if err != nil || got.Serial != rec.Serial || got.Role != "default" || !got.NotAfter.Equal(rec.NotAfter) || len(got.DER) != 600 {
		t.Fatalf("ok/get: %+v %v", got, err)
	}
	got.Names[0] = "changed"
	again, _ := s.GetCertificate(ctx, rec.Serial)
	if again.Names[0] == "changed" {
		t.Fatal("ok/copy: record shares memory with the store")
	}
	dup := Record("default")
	dup.Serial = rec.Serial
	if err := s.InsertCertificate(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/duplicate serial: %v", err)
	}
	// A write the store refuses is the caller's failure, not the store's:
	// WriteFailure reports only commits that could not be made.
	if at, err := s.WriteFailure(); err != nil || !at.IsZero() {
		t.Fatalf("ok/write failure after a refused write: %v at %v", err, at)
	}
	if _, err := s.GetCertificate(ctx, "ffff"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/unknown: %v", err)
	}
	if _, _, err := s.UpdateCertificate(ctx, "ffff", func(*store.CertRecord) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/update unknown: %v", err)
	}
	boom := errors.New("boom")
	if _, _, err := s.UpdateCertificate(ctx, rec.Serial, func(r *store.CertRecord) error { r.Role = "x"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fail/update aborted: %v", err)
	}
	if r, _ := s.GetCertificate(ctx, rec.Serial); r.Role != "default" {
		t.Fatal("fail/update aborted: change was kept")
	}
	s.Close()
	s = open(t)
	defer s.Close()
	if _, err := s.GetCertificate(ctx, rec.Serial); err != nil {
		t.Fatalf("ok/after reopen: %v", err)
	}
}

func testList(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	want := map[string]bool{}
	for i := range 25 {
		role := "list-a"
		if i%5 == 0 {
			role = "list-b"
		}
		r := Record(role)
		if i == 3 {
			r.NotAfter = t0.Add(-time.Hour)
		}
		if err := s.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
		if role == "list-a" {
			want[r.Serial] = true
		}
	}
	got := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		page, next, err := s.ListCertificates(ctx, store.ListFilter{Role: "list-a", Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page) > 7 {
			t.Fatalf("ok/pagination: %d records on a page of 7", len(page))
		}
		for _, r := range page {
			if r.Role != "list-a" || got[r.Serial] {
				t.Fatalf("ok/pagination: wrong or repeated record %s %s", r.Serial, r.Role)
			}
			got[r.Serial] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	// At most 7 a page, so at least 3 pages (a store that bounds what
	// one call reads may answer in more).
	if len(got) != len(want) || pages < 3 {
		t.Fatalf("ok/pagination: got %d records in %d pages, want %d in 3 or more", len(got), pages, len(want))
	}
	if exp := ListAll(t, s, store.ListFilter{Role: "list-a", Status: "expired", Now: t0}); len(exp) != 1 {
		t.Fatalf("ok/status filter: %d records", len(exp))
	}
	testListByName(t, s)
	testListByRequester(t, s)
}

// testListByRequester: the requester filter lists exactly one requester's
// records, beside the other filters; a requester whose name is only the
// start of another's, or that appears as a name, does not match.
func testListByRequester(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []string
	add := func(requester string, names ...string) *store.CertRecord {
		t.Helper()
		r := Record("list-req")
		r.Requester, r.Names = requester, names
		if err := s.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for range 3 {
		want = append(want, add("token:leaked", "a.req.internal").Serial)
		add("token:leaked-too", "b.req.internal")
		add("token:other", "token:leaked")
	}
	// A renewal of one of them: its requester is the certificate it
	// renewed, its authorization still the leaked token's.
	renewal := Record("list-req")
	renewal.Requester, renewal.AuthorizedBy, renewal.Names = "mtls:"+want[0], "token:leaked", []string{"a.req.internal"}
	other := Record("list-req")
	other.Requester, other.AuthorizedBy = "mtls:x", "token:leaked-too"
	for _, r := range []*store.CertRecord{renewal, other} {
		if err := s.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.GetCertificate(ctx, renewal.Serial); err != nil || got.AuthorizedBy != "token:leaked" || got.Authorizer() != "token:leaked" {
		t.Fatalf("authorized_by not kept: %+v %v", got, err)
	}
	want = append(want, renewal.Serial)
	Revoke(t, s, want[2], t0, "keyCompromise")
	for _, tc := range []struct {
		f    store.ListFilter
		want []string
	}{
		{store.ListFilter{Requester: "token:leaked"}, want},
		{store.ListFilter{Requester: "token:leaked", Status: "valid", Now: t0}, []string{want[0], want[1], want[3]}},
		{store.ListFilter{Requester: "mtls:" + want[0]}, want[3:]},
		{store.ListFilter{Requester: "token:leaked", Name: "b.req.internal"}, nil},
		{store.ListFilter{Requester: "token:leak"}, nil},
	} {
		expectListed(t, s, "requester filter", tc.f, tc.want)
	}
}

// testListByName: the name filter lists exactly the records that carry the
// name, through pages and beside the other filters; a name that is only
// the end of another, or that appears in another field, does not match.
func testListByName(t *testing.T, s store.Store) {
	ctx := context.Background()
	const name = "shared.list.internal"
	var want []string
	add := func(role string, names ...string) *store.CertRecord {
		t.Helper()
		r := Record(role)
		r.Names = names
		if err := s.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 5 {
		r := add("list-name", "own"+strconv.Itoa(i)+".list.internal", name)
		want = append(want, r.Serial)
		add("list-name", "a."+name)             // the name's end only
		add(name, "other.list.internal")        // the name as a role
		add("list-name", strings.ToUpper(name)) // issuance writes lower case
	}
	ip := add("list-name", "10.9.8.7", "fd00::7")
	Revoke(t, s, want[1], t0, "superseded")
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > maxPages {
			t.Fatal("ok/name filter: the cursor never ends")
		}
		page, next, err := s.ListCertificates(ctx, store.ListFilter{Name: name, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.Serial)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ok/name filter: listed %v, want %v (oldest first)", got, want)
	}
	for _, tc := range []struct {
		f    store.ListFilter
		want []string
	}{
		{store.ListFilter{Name: name, Status: store.StatusRevoked, Now: t0}, want[1:2]},
		{store.ListFilter{Name: name, Role: "list-name", Status: "valid", Now: t0}, append([]string{want[0]}, want[2:]...)},
		{store.ListFilter{Name: name, Role: "list-other"}, nil},
		{store.ListFilter{Name: "fd00::7"}, []string{ip.Serial}},
		{store.ListFilter{Name: "list.internal"}, nil},
	} {
		expectListed(t, s, "name filter", tc.f, tc.want)
	}
}

// testSameKey: a keyCompromise revocation revokes, in its own commit,
// every other record of the key still valid at its time (same time and
// reason, listed for the CRL, counted), and returns them; records of the
// key already revoked or expired by then, records of other keys, and
// records pruned meanwhile are left alone. Another reason takes none.
func testSameKey(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	const key, issuer = "same-key-hash", "same-key-issuer"
	at := t0.Add(time.Hour)
	add := func(keyHash string, notAfter time.Time) *store.CertRecord {
		t.Helper()
		r := Record("same-key")
		r.KeyHash, r.Issuer, r.NotAfter = keyHash, issuer, notAfter
		if err := s.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	long := t0.Add(24 * time.Hour)
	first, twin, third := add(key, long), add(key, long), add(key, long)
	expired := add(key, at.Add(-time.Minute))
	superseded := add(key, long)
	pruned := add(key, t0.Add(-200*time.Hour))
	other := add("other-key-hash", long)
	Revoke(t, s, superseded.Serial, t0, "superseded")
	// Prune calls read on from where the last stopped, a bounded read
	// each: call until the record is gone.
	for i := 0; ; i++ {
		if _, err := s.GetCertificate(ctx, pruned.Serial); errors.Is(err, store.ErrNotFound) {
			break
		}
		if _, err := s.PruneCertificates(ctx, t0.Add(-100*time.Hour), 100); err != nil || i > 1000 {
			t.Fatalf("prune: %v after %d calls", err, i)
		}
	}
	seq, _ := s.RevocationSeq(ctx, issuer)
	_, sameKey, err := s.UpdateCertificate(ctx, twin.Serial, func(r *store.CertRecord) error {
		r.Status, r.RevokedAt, r.Reason = store.StatusRevoked, at, "unspecified"
		return nil
	})
	if err != nil || len(sameKey) != 0 {
		t.Fatalf("ok/another reason takes no other record: %v %v", sameKey, err)
	}
	rec, sameKey, err := s.UpdateCertificate(ctx, first.Serial, func(r *store.CertRecord) error {
		r.Status, r.RevokedAt, r.Reason = store.StatusRevoked, at, "keyCompromise"
		return nil
	})
	if err != nil || rec.Serial != first.Serial {
		t.Fatalf("ok/revoke: %+v %v", rec, err)
	}
	var got []string
	for _, r := range sameKey {
		got = append(got, r.Serial)
		if r.Status != store.StatusRevoked || r.Reason != "keyCompromise" || !r.RevokedAt.Equal(at) {
			t.Fatalf("ok/returned as revoked: %+v", r)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{third.Serial}) {
		t.Fatalf("ok/sameKey %v, want only the key's other valid record %s", got, third.Serial)
	}
	if r, _ := s.GetCertificate(ctx, third.Serial); r.Status != store.StatusRevoked || r.Reason != "keyCompromise" || !r.RevokedAt.Equal(at) {
		t.Fatalf("ok/stored as revoked: %+v", r)
	}
	for _, c := range []struct {
		rec    *store.CertRecord
		reason string
	}{{twin, "unspecified"}, {expired, ""}, {superseded, "superseded"}, {other, ""}} {
		if r, _ := s.GetCertificate(ctx, c.rec.Serial); r.Reason != c.reason {
			t.Fatalf("fail/record %s changed: %+v", c.rec.Serial, r)
		}
	}
	listed := map[string]string{}
	list, _ := s.ListRevoked(ctx, issuer)
	for _, e := range list {
		listed[e.Serial] = e.Reason
	}
	if listed[third.Serial] != "keyCompromise" || listed[first.Serial] != "keyCompromise" {
		t.Fatalf("ok/CRL list: %v", listed)
	}
	if now, _ := s.RevocationSeq(ctx, issuer); now != seq+3 {
		t.Fatalf("ok/revocation count went from %d to %d, want +3", seq, now)
	}
	expectListed(t, s, "revoked after the sweep", store.ListFilter{Role: "same-key", Status: store.StatusRevoked, Now: at},
		[]string{first.Serial, twin.Serial, third.Serial, superseded.Serial})
}

func testRevocation(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	rec := Record("default")
	rec.Issuer = "rev-issuer"
	if err := s.InsertCertificate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.KeyBlocked(ctx, rec.KeyHash); b {
		t.Fatal("fail/blocked before revocation")
	}
	Revoke(t, s, rec.Serial, t0, "keyCompromise")
	s.Close()
	s = open(t)
	defer s.Close()
	list, err := s.ListRevoked(ctx, "rev-issuer")
	if err != nil || len(list) != 1 || list[0].Serial != rec.Serial || list[0].Reason != "keyCompromise" {
		t.Fatalf("ok/list revoked: %+v %v", list, err)
	}
	if other, _ := s.ListRevoked(ctx, "rev-issue"); len(other) != 0 {
		t.Fatal("fail/issuer prefix leaks into another issuer")
	}
	if b, _ := s.KeyBlocked(ctx, rec.KeyHash); !b {
		t.Fatal("ok/key blocked after keyCompromise")
	}
	// The insert itself refuses a blocked key and the renewal of a revoked
	// certificate, so neither can slip in behind a revocation.
	again := Record("default")
	again.KeyHash = rec.KeyHash
	if err := s.InsertCertificate(ctx, again); !errors.Is(err, store.ErrKeyBlocked) {
		t.Fatalf("fail/insert with a blocked key: %v", err)
	}
	// A record made revoked (an adopted certificate the CRL lists) issues
	// nothing: the block does not refuse it.
	again.Status, again.RevokedAt, again.Reason = store.StatusRevoked, t0, "keyCompromise"
	if err := s.InsertCertificate(ctx, again); err != nil {
		t.Fatalf("ok/insert a revoked record with a blocked key: %v", err)
	}
	successor := Record("default")
	successor.Replaces, successor.Via = rec.Serial, "renew"
	if err := s.InsertCertificate(ctx, successor); !errors.Is(err, store.ErrReplacedRevoked) {
		t.Fatalf("fail/renewal of a revoked certificate: %v", err)
	}
	if _, err := s.GetCertificate(ctx, successor.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/refused renewal recorded anyway: %v", err)
	}
	if got, _ := s.GetCertificate(ctx, rec.Serial); got.ReplacedBy != "" {
		t.Fatalf("fail/a refused renewal marked its predecessor replaced: %q", got.ReplacedBy)
	}
	// An ACME order that names a revoked certificate in "replaces" was
	// validated afresh: RFC 9773 asks for exactly that replacement.
	acmeNew := Record("default")
	acmeNew.Replaces, acmeNew.Via = rec.Serial, "acme"
	if err := s.InsertCertificate(ctx, acmeNew); err != nil {
		t.Fatalf("ok/ACME replacement of a revoked certificate: %v", err)
	}
	if got, _ := s.GetCertificate(ctx, rec.Serial); got.ReplacedBy != acmeNew.Serial || got.Status != store.StatusRevoked || got.Reason != "keyCompromise" {
		t.Fatalf("ok/replaced_by set, revocation kept: %+v", got)
	}
	valid := Record("default")
	if err := s.InsertCertificate(ctx, valid); err != nil {
		t.Fatal(err)
	}
	ok := Record("default")
	ok.Replaces, ok.Via = valid.Serial, "renew"
	if err := s.InsertCertificate(ctx, ok); err != nil {
		t.Fatalf("ok/renewal of a valid certificate: %v", err)
	}
	// The first replacement is the one recorded; a second (a client that
	// lost the first) is committed but does not overwrite it.
	second := Record("default")
	second.Replaces, second.Via = valid.Serial, "renew"
	if err := s.InsertCertificate(ctx, second); err != nil {
		t.Fatalf("ok/second renewal: %v", err)
	}
	got, err := s.GetCertificate(ctx, valid.Serial)
	if err != nil || got.ReplacedBy != ok.Serial || !bytes.Equal(got.DER, valid.DER) || got.Status != store.StatusValid {
		t.Fatalf("ok/replaced_by names the first replacement: %+v %v", got, err)
	}
	if st := ListAll(t, s, store.ListFilter{Status: store.StatusValid, Now: t0}); !slices.ContainsFunc(st, func(r *store.CertRecord) bool { return r.Serial == valid.Serial }) {
		t.Fatal("fail/marking a record replaced dropped it from the status index")
	}
	orphan := Record("default")
	orphan.Replaces = RandomSerial()
	if err := s.InsertCertificate(ctx, orphan); err != nil {
		t.Fatalf("ok/replacing a serial the store does not hold: %v", err)
	}
}

func testCRL(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.GetCRL(ctx, "crl-issuer"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/no CRL yet: %v", err)
	}
	st := &store.CRLState{Issuer: "crl-issuer", Number: "1", ThisUpdate: t0, NextUpdate: t0.Add(time.Hour), DER: []byte{1}}
	if err := s.PutCRL(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCRL(ctx, st); !errors.Is(err, store.ErrStale) {
		t.Fatalf("fail/same number: %v", err)
	}
	older := *st
	older.ThisUpdate = t0.Add(-time.Second)
	if err := s.PutCRL(ctx, &older); !errors.Is(err, store.ErrStale) {
		t.Fatalf("fail/older thisUpdate, same number: %v", err)
	}
	newer := *st
	newer.ThisUpdate, newer.Number = t0.Add(time.Second), "9"
	if err := s.PutCRL(ctx, &newer); err != nil {
		t.Fatalf("ok/newer: %v", err)
	}
	// The clock was stepped back: thisUpdate goes back, the number on.
	// Numbers compare as numbers, not as strings ("10" > "9").
	stepped := *st
	stepped.ThisUpdate, stepped.Number = t0.Add(-time.Hour), "10"
	if err := s.PutCRL(ctx, &stepped); err != nil {
		t.Fatalf("ok/earlier thisUpdate, greater number: %v", err)
	}
	lower := *st
	lower.ThisUpdate, lower.Number = t0.Add(time.Hour), "8"
	if err := s.PutCRL(ctx, &lower); !errors.Is(err, store.ErrStale) {
		t.Fatalf("fail/later thisUpdate, smaller number: %v", err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	got, err := s.GetCRL(ctx, "crl-issuer")
	if err != nil || got.Number != "10" || !got.ThisUpdate.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("ok/after reopen: %+v %v", got, err)
	}
}

func testTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	tok := &store.Token{ID: "tok1", SecretHash: []byte{1, 2}, Name: "ci", Roles: []string{"default"}, Once: true, CreatedAt: t0, CreatedBy: "token:adm1"}
	if err := s.PutToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, tok); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/duplicate id: %v", err)
	}
	got, err := s.GetToken(ctx, "tok1")
	if err != nil || got.Name != "ci" || string(got.SecretHash) != "\x01\x02" || got.CreatedBy != "token:adm1" {
		t.Fatalf("ok/get: %+v %v", got, err)
	}
	// Two concurrent uses of a single-use token: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); wins <- s.UseToken(ctx, "tok1", t0) }()
	}
	wg.Wait()
	close(wins)
	ok := 0
	for err := range wins {
		if err == nil {
			ok++
		} else if !errors.Is(err, store.ErrStale) {
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("fail/used twice: %d uses succeeded", ok)
	}
	// A read after the use sees it (a backend may cache decoded tokens, but
	// never past a change), and what a caller does to a returned token
	// stays with the caller.
	got, err = s.GetToken(ctx, "tok1")
	if err != nil || !got.UsedAt.Equal(t0) {
		t.Fatalf("ok/get after use: %+v %v", got, err)
	}
	got.Roles[0], got.SecretHash[0] = "admin", 9
	if again, err := s.GetToken(ctx, "tok1"); err != nil || again.Roles[0] != "default" || again.SecretHash[0] != 1 {
		t.Fatalf("ok/get is a copy: %+v %v", again, err)
	}
	list, err := s.ListTokens(ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("ok/list: %v", err)
	}
	if err := s.DeleteToken(ctx, "tok1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, "tok1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/deleted: %v", err)
	}
	if err := s.DeleteToken(ctx, "tok1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/delete twice: %v", err)
	}
}

// testPruneTokens: PruneTokens deletes tokens that expired before the
// cut-off, oldest first and at most max per call, durably; a token
// deleted by hand leaves nothing behind for a prune to count.
func testPruneTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	base := t0.Add(1000 * time.Hour) // after every token the other tests make
	put := func(id string, expires time.Duration, once bool) {
		t.Helper()
		tok := &store.Token{ID: id, SecretHash: []byte{1}, Name: id, Roles: []string{"default"}, Once: once, CreatedAt: base, ExpiresAt: base.Add(expires)}
		if err := s.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	put("prune-c", 3*time.Hour, false)
	put("prune-a", time.Hour, false)
	put("prune-b", 2*time.Hour, false)
	put("prune-d", 2*time.Hour, true)
	if err := s.UseToken(ctx, "prune-d", base); err != nil {
		t.Fatal(err)
	}
	put("prune-e", 4*time.Hour, false)
	if err := s.DeleteToken(ctx, "prune-e"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneTokens(ctx, time.Time{}, 10); err != nil || n != 0 {
		t.Fatalf("fail/pruned %d (%v) before year 1", n, err)
	}
	if n, err := s.PruneTokens(ctx, base.Add(time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("fail/pruned %d (%v) at the first expiry, want none", n, err)
	}
	cut := base.Add(2*time.Hour + time.Second)
	if n, err := s.PruneTokens(ctx, cut, 1); err != nil || n != 1 {
		t.Fatalf("ok/pruned %d (%v), want 1 (max)", n, err)
	}
	if _, err := s.GetToken(ctx, "prune-a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/oldest first: prune-a kept (%v)", err)
	}
	if _, err := s.GetToken(ctx, "prune-b"); err != nil {
		t.Fatalf("ok/max: prune-b gone already (%v)", err)
	}
	if n, err := s.PruneTokens(ctx, cut, 10); err != nil || n != 2 {
		t.Fatalf("ok/pruned %d (%v), want prune-b and prune-d", n, err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, tok := range list {
		left = append(left, tok.ID)
	}
	if fmt.Sprint(left) != "[prune-c]" {
		t.Fatalf("ok/after reopen: tokens %v, want [prune-c]", left)
	}
	// prune-e, deleted by hand, must not be counted (or found) again.
	if n, err := s.PruneTokens(ctx, base.Add(10*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("ok/pruned %d (%v), want prune-c alone", n, err)
	}
	if n, err := s.PruneTokens(ctx, base.Add(10*time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("ok/pruned %d (%v) from an empty index", n, err)
	}
}

// testConcurrent: 1,000 inserts from 32 goroutines; every one is visible as
// soon as InsertCertificate returns, and all survive a close and reopen.
func testConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	const n, workers = 1000, 32
	serials := make(chan string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				r := Record("conc")
				if err := s.InsertCertificate(ctx, r); err != nil {
					errs <- err
					return
				}
				if _, err := s.GetCertificate(ctx, r.Serial); err != nil {
					errs <- fmt.Errorf("not visible after insert returned: %w", err)
					return
				}
				serials <- r.Serial
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(serials)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for sn := range serials {
		if seen[sn] {
			t.Fatalf("duplicate serial %s", sn)
		}
		seen[sn] = true
	}
	if len(seen) != n {
		t.Fatalf("%d inserted, want %d", len(seen), n)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	for sn := range seen {
		if _, err := s.GetCertificate(ctx, sn); err != nil {
			t.Fatalf("lost after reopen: %s: %v", sn, err)
		}
	}
}

// testRevocationSeq: each change to an issuer's CRL entries (a revocation,
// a reason raised) counts once, committed with it and durable; an update
// that leaves the entry as it was, and other issuers' revocations, do not
// count.
func testRevocationSeq(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	seq := func(want uint64, what string) {
		t.Helper()
		if n, err := s.RevocationSeq(ctx, "seq-issuer"); err != nil || n != want {
			t.Fatalf("%s: count %d (%v), want %d", what, n, err, want)
		}
	}
	revoke := func(serial, reason string) { t.Helper(); Revoke(t, s, serial, t0, reason) }
	seq(0, "ok/none yet")
	var serials []string
	for _, issuer := range []string{"seq-issuer", "seq-issuer", "seq-other"} {
		rec := Record("default")
		rec.Issuer = issuer
		if err := s.InsertCertificate(ctx, rec); err != nil {
			t.Fatal(err)
		}
		serials = append(serials, rec.Serial)
	}
	seq(0, "ok/issuing counts nothing")
	revoke(serials[0], "superseded")
	revoke(serials[1], "unspecified")
	seq(2, "ok/two revocations")
	revoke(serials[0], "superseded")
	seq(2, "ok/the same entry again")
	revoke(serials[0], "keyCompromise")
	seq(3, "ok/reason raised")
	revoke(serials[2], "unspecified")
	seq(3, "ok/another issuer's revocation")
	s.Close()
	s = open(t)
	defer s.Close()
	seq(3, "ok/after reopen")
}

// testPruneRevoked: PruneRevoked deletes from one issuer's CRL list the
// entries both expired and revoked before the cut-offs, at most max per
// call, durably, and nothing else: not the records, not blocked keys, not
// the revocation count, not another issuer's list.
func testPruneRevoked(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	type rev struct {
		issuer              string
		notAfter, revokedAt time.Time
		reason              string
		pruned              bool
	}
	cutExpired, cutRevoked := t0.Add(10*time.Hour), t0.Add(5*time.Hour)
	cases := []rev{
		{"prune-issuer", t0.Add(time.Hour), t0, "keyCompromise", true},
		{"prune-issuer", t0.Add(2 * time.Hour), t0.Add(time.Hour), "superseded", true},
		{"prune-issuer", t0.Add(3 * time.Hour), t0.Add(2 * time.Hour), "unspecified", true},
		{"prune-issuer", cutExpired, t0, "unspecified", false},                // expires at the cut, not before
		{"prune-issuer", t0.Add(time.Hour), cutRevoked, "unspecified", false}, // revoked at the cut
		{"prune-issuer", t0.Add(48 * time.Hour), t0, "superseded", false},     // still valid
		{"prune-other", t0.Add(time.Hour), t0, "unspecified", false},          // another issuer
	}
	serials := make([]string, len(cases))
	for i, c := range cases {
		rec := Record("default")
		rec.Issuer, rec.NotAfter = c.issuer, c.notAfter
		if err := s.InsertCertificate(ctx, rec); err != nil {
			t.Fatal(err)
		}
		Revoke(t, s, rec.Serial, c.revokedAt, c.reason)
		serials[i] = rec.Serial
	}
	seqBefore, _ := s.RevocationSeq(ctx, "prune-issuer")
	if n, err := s.PruneRevoked(ctx, "prune-issuer", cutExpired, cutRevoked, 2); err != nil || n != 2 {
		t.Fatalf("ok/first batch: %d %v, want 2 (max)", n, err)
	}
	if n, err := s.PruneRevoked(ctx, "prune-issuer", cutExpired, cutRevoked, 2); err != nil || n != 1 {
		t.Fatalf("ok/second batch: %d %v, want the 1 left", n, err)
	}
	if n, err := s.PruneRevoked(ctx, "prune-issuer", cutExpired, cutRevoked, 2); err != nil || n != 0 {
		t.Fatalf("ok/nothing left to prune: %d %v", n, err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	listed := map[string]bool{}
	for _, issuer := range []string{"prune-issuer", "prune-other"} {
		list, err := s.ListRevoked(ctx, issuer)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			listed[e.Serial] = true
		}
	}
	for i, c := range cases {
		if listed[serials[i]] == c.pruned {
			t.Errorf("case %d (%+v): listed=%v after pruning and reopening", i, c, listed[serials[i]])
		}
		rec, err := s.GetCertificate(ctx, serials[i])
		if err != nil || rec.Status != store.StatusRevoked || rec.Reason != c.reason {
			t.Errorf("ok/case %d: the record must stay revoked: %+v %v", i, rec, err)
		}
	}
	if b, _ := s.KeyBlocked(ctx, "k"+serials[0]); !b {
		t.Error("ok/a pruned keyCompromise entry's key is still blocked")
	}
	if seq, _ := s.RevocationSeq(ctx, "prune-issuer"); seq != seqBefore {
		t.Errorf("ok/pruning leaves the revocation count: %d, was %d", seq, seqBefore)
	}
}

// testListStatus: each status filter, alone and with a role, lists exactly
// the records of that status at Now, oldest first, page by page; a
// revocation moves a record from valid to revoked at once, and all of it
// holds after a close and reopen.
func testListStatus(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	now := t0.Add(100*time.Hour + 500*time.Millisecond)
	type rec struct {
		serial, role string
		status       string // at now
	}
	var recs []rec
	for i := range 60 {
		r := Record([]string{"status-a", "status-b"}[i%2])
		switch i % 3 {
		case 0: // long expired
			r.NotAfter = t0
		case 1:
			r.NotAfter = now.Add(time.Hour)
		case 2: // expires within now's second: the nanoseconds decide
			r.NotAfter = now.Add(time.Duration(i%4-1) * time.Nanosecond)
		}
		if err := s.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
		want := "valid"
		if now.After(r.NotAfter) {
			want = "expired"
		}
		recs = append(recs, rec{r.Serial, r.Role, want})
	}
	for i := range recs {
		if i%5 == 1 || i == 58 { // some valid, some expired
			Revoke(t, s, recs[i].serial, t0, "superseded")
			recs[i].status = "revoked"
		}
	}
	mine := map[string]bool{}
	for _, r := range recs {
		mine[r.serial] = true
	}
	check := func(what string) {
		t.Helper()
		for _, status := range []string{"valid", "revoked", "expired"} {
			for _, role := range []string{"", "status-a"} {
				var want []string
				for _, r := range recs {
					if r.status == status && (role == "" || r.role == role) {
						want = append(want, r.serial)
					}
				}
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > maxPages {
						t.Fatalf("%s: %s/%q: the cursor never ends", what, status, role)
					}
					page, next, err := s.ListCertificates(ctx, store.ListFilter{Role: role, Status: status, Now: now, Limit: 4, Cursor: cursor})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range page {
						if store.EffectiveStatus(r, now) != status || (role != "" && r.Role != role) {
							t.Fatalf("%s: %s/%q: listed %s (%s, %s)", what, status, role, r.Serial, store.EffectiveStatus(r, now), r.Role)
						}
						if mine[r.Serial] { // the store holds other cases' records too
							got = append(got, r.Serial)
						}
					}
					if next == "" {
						break
					}
					cursor = next
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: %s/%q: listed %d records %v, want %d %v (oldest first)", what, status, role, len(got), got, len(want), want)
				}
			}
		}
	}
	check("ok/filters")
	// "expired" needs Now: with none, every record not revoked is valid.
	if none := ListAll(t, s, store.ListFilter{Status: "expired", Limit: 1000}); len(none) != 0 {
		t.Fatalf("ok/no Now, nothing expired: %d records", len(none))
	}
	s.Close()
	s = open(t)
	defer s.Close()
	check("ok/after reopen")
}

// RunPruneCertificates runs the conformance test of PruneCertificates. It
// needs a store of its own, whose records it counts.
func RunPruneCertificates(t *testing.T, open Opener) { testPruneCertificates(t, open) }

// testPruneCertificates: records that expired before the cut go, in
// batches of at most max, read on from where the last call stopped, past
// records that are not due, wrapping at the end; a pruned record is gone
// from every listing; the CRL list entry of a pruned revoked record and
// its blocked key stay.
func testPruneCertificates(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	cut := t0.Add(10 * time.Hour)
	cases := []struct {
		notAfter time.Time
		role     string
		revoked  bool
		pruned   bool
	}{
		{t0.Add(time.Hour), "prune-a", false, true},
		{t0.Add(2 * time.Hour), "prune-b", true, true},
		{t0.Add(3 * time.Hour), "prune-a", false, true},
		{cut, "prune-a", false, false},              // expires at the cut, not before
		{t0.Add(time.Hour), "prune-a", false, true}, // due, after one that is not
		{t0.Add(48 * time.Hour), "prune-b", false, false},
	}
	recs := make([]*store.CertRecord, len(cases))
	for i, c := range cases {
		rec := Record(c.role)
		rec.Issuer, rec.NotAfter = "prune-certs", c.notAfter
		if err := s.InsertCertificate(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if c.revoked {
			Revoke(t, s, rec.Serial, t0, "keyCompromise")
		}
		recs[i] = rec
	}
	// 2 (max), then 2 past the one not due, then the end (and a wrap),
	// then from the start nothing is due.
	for i, want := range []int{2, 2, 0, 0} {
		if n, err := s.PruneCertificates(ctx, cut, 2); err != nil || n != want {
			t.Fatalf("batch %d: pruned %d, %v; want %d", i+1, n, err, want)
		}
	}
	// A record due from the start, inserted after the wrap, is found.
	late := Record("prune-a")
	late.Issuer, late.NotAfter = "prune-certs", t0
	if err := s.InsertCertificate(ctx, late); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneCertificates(ctx, cut, 2); err != nil || n != 1 {
		t.Fatalf("after the wrap: pruned %d, %v; want the late record", n, err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	for i, c := range cases {
		_, err := s.GetCertificate(ctx, recs[i].Serial)
		if c.pruned != errors.Is(err, store.ErrNotFound) {
			t.Errorf("record %d (pruned %v): %v", i, c.pruned, err)
		}
	}
	// By then every record left has expired: each listing holds them all.
	for role, want := range map[string]int{"prune-a": 1, "prune-b": 1} {
		for _, status := range []string{"", "expired"} {
			list := ListAll(t, s, store.ListFilter{Role: role, Status: status, Now: t0.Add(100 * time.Hour), Limit: 100})
			if len(list) != want {
				t.Errorf("list %s %q: %d records; want %d", role, status, len(list), want)
			}
			for _, r := range list {
				for i, c := range cases {
					if c.pruned && r.Serial == recs[i].Serial {
						t.Errorf("list %s %q holds pruned record %d", role, status, i)
					}
				}
			}
		}
	}
	if list, err := s.ListRevoked(ctx, "prune-certs"); err != nil || len(list) != 1 || list[0].Serial != recs[1].Serial {
		t.Fatalf("the CRL list entry of the pruned revoked record: %+v %v", list, err)
	}
	if blocked, err := s.KeyBlocked(ctx, recs[1].KeyHash); err != nil || !blocked {
		t.Fatalf("the pruned record's key is no longer blocked: %v", err)
	}
}

// expectListed fails the test unless f lists exactly the serials want,
// in that order (every page followed).
func expectListed(t *testing.T, s store.Store, what string, f store.ListFilter, want []string) {
	t.Helper()
	var serials []string
	for _, r := range ListAll(t, s, f) {
		serials = append(serials, r.Serial)
	}
	if fmt.Sprint(serials) != fmt.Sprint(want) {
		t.Fatalf("ok/%s %+v: listed %v, want %v", what, f, serials, want)
	}
}
