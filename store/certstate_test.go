package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSchema4IndexesOldRecords: records written by a schema-3 pkid (no
// state index) are indexed when the store is opened and raised to schema
// 4, so status listings find them, revoked ones included, whether the
// fill's batches divide the records evenly or not.
func TestSchema4IndexesOldRecords(t *testing.T) { forStateBatches(t, testSchema4) }

// forStateBatches runs test with fills of batches that divide six records
// evenly and not.
func forStateBatches(t *testing.T, test func(*testing.T)) {
	defer func(n int) { stateBatch = n }(stateBatch)
	for _, batch := range []int{1, 3, 4, 1000} {
		stateBatch = batch
		t.Run(fmt.Sprintf("batch=%d", batch), test)
	}
}

// insertSix inserts six records of role "old" issued at at, serials
// from base, each as edit(i) makes it, and returns their serials.
func insertSix(t *testing.T, b *Bolt, base int, at time.Time, edit func(i int, r *CertRecord)) []string {
	t.Helper()
	var serials []string
	for i := range 6 {
		serial := fmt.Sprintf("%x", base+i)
		rec := &CertRecord{Serial: serial, Issuer: "i", Role: "old", NotBefore: at, NotAfter: at.Add(48 * time.Hour), Status: StatusValid, CreatedAt: at}
		edit(i, rec)
		if err := b.InsertCertificate(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		serials = append(serials, serial)
	}
	return serials
}

func testSchema4(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	serials := insertSix(t, b, 0x1000, at, func(i int, r *CertRecord) { r.NotAfter = at.Add(time.Duration(i%2) * 48 * time.Hour) })
	if _, _, err := b.UpdateCertificate(ctx, serials[1], func(r *CertRecord) error {
		r.Status, r.RevokedAt, r.Reason = StatusRevoked, at, "superseded"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// As schema 3 wrote it (no state index), then upgraded.
	b = reopenAs(t, b, path, bCertState, "3")
	now := at.Add(time.Hour)
	for status, want := range map[string][]string{
		StatusValid:   {serials[3], serials[5]},
		StatusRevoked: {serials[1]},
		"expired":     {serials[0], serials[2], serials[4]},
	} {
		for _, role := range []string{"", "old"} {
			recs, _, err := b.ListCertificates(ctx, ListFilter{Role: role, Status: status, Now: now})
			var got []string
			for _, r := range recs {
				got = append(got, r.Serial)
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s/%q after the upgrade: %v (%v), want %v", status, role, got, err, want)
			}
		}
	}
}
