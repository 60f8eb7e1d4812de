package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func codecRecord() *CertRecord {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	der := bytes.Repeat([]byte{0x30, 0x82, 0xff, 0x00}, 175) // 700 bytes, a P-256 leaf's size
	return &CertRecord{Serial: "1ba2ffeb0369fd123809ebe86061efd7bf538e32", Issuer: "378b5acee239711218136a77e89c6dda3cf7240f",
		Role: "default", Names: []string{"bench-1985.internal"}, NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: der,
		KeyHash: strings.Repeat("5f", 32), Status: StatusValid, Requester: "token:bench", AuthorizedAt: t0, Via: "api", CreatedAt: t0}
}

func TestCertCodec(t *testing.T) {
	rec := codecRecord()
	enc, err := encodeCert(rec)
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := json.Marshal(rec)
	// Three records and their element headers fit a 4 KB page; whole
	// JSON, two did.
	if 3*(len(enc)+16)+16 > 4096 || 3*(len(legacy)+16)+16 <= 4096 {
		t.Fatalf("record %d bytes, whole JSON %d", len(enc), len(legacy))
	}
	fields, _ := json.Marshal(&CertRecord{Serial: rec.Serial})
	cases := []struct {
		name string
		v    []byte
		err  string
	}{
		{"ok/fields then DER", enc, ""},
		{"ok/whole JSON, as written before", legacy, ""},
		{"fail/empty", nil, "unknown format"},
		{"fail/unknown format", append([]byte{0x02}, enc[1:]...), "unknown format (first byte 0x2)"},
		{"fail/length past the end", append([]byte{certFormatDER}, binary.AppendUvarint(nil, 1<<40)...), "bad length"},
		{"fail/no length", []byte{certFormatDER}, "bad length"},
		{"fail/fields not JSON", append(append([]byte{certFormatDER, 3}, "{x}"...), 0x30), "fields"},
		{"fail/whole JSON broken", []byte(`{"serial":`), "unexpected end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeCert(tc.v)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, rec) {
				t.Fatalf("%v\n got %+v\nwant %+v", err, got, rec)
			}
		})
	}
	// A record without a DER is its fields alone.
	bare, _ := encodeCert(&CertRecord{Serial: rec.Serial})
	if want := append(append([]byte{certFormatDER}, binary.AppendUvarint(nil, uint64(len(fields)))...), fields...); !bytes.Equal(bare, want) {
		t.Fatalf("bare record %q", bare)
	}
	// The DER is copied out of the value (bbolt's memory outlives no
	// transaction).
	got, _ := decodeCert(enc)
	enc[len(enc)-1] ^= 0xff
	if got.DER[len(got.DER)-1] != rec.DER[len(rec.DER)-1] {
		t.Fatal("decoded DER aliases the stored value")
	}
}

// TestLegacyRecordsStillServe: a store whose records were written as whole
// JSON (before certFormatDER) is read, listed and revoked as ever, and the
// record a revocation rewrites takes the new form.
func TestLegacyRecordsStillServe(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	ctx := context.Background()
	rec := codecRecord()
	legacy, _ := json.Marshal(rec)
	if err := b.db.Update(func(tx *bolt.Tx) error {
		seq := binary.BigEndian.AppendUint64(nil, 1)
		if err := tx.Bucket(bCerts).Put(seq, legacy); err != nil {
			return err
		}
		if err := tx.Bucket(bSerials).Put(certKey(rec.Serial), seq); err != nil {
			return err
		}
		return tx.Bucket(bCertRole).Put(idxKey(rec.Role, seq), nil)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetCertificate(ctx, rec.Serial); err != nil || !reflect.DeepEqual(got, rec) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if got, _, err := b.ListCertificates(ctx, ListFilter{Role: "default"}); err != nil || len(got) != 1 || !bytes.Equal(got[0].DER, rec.DER) {
		t.Fatalf("list: %v %v", got, err)
	}
	if _, _, err := b.UpdateCertificate(ctx, rec.Serial, func(r *CertRecord) error {
		r.Status, r.Reason, r.RevokedAt = StatusRevoked, "superseded", r.CreatedAt
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bCerts).Get(binary.BigEndian.AppendUint64(nil, 1)); v[0] != certFormatDER {
			t.Fatalf("rewritten record starts %q", v[:1])
		}
		return nil
	})
	if got, err := b.GetCertificate(ctx, rec.Serial); err != nil || got.Status != StatusRevoked || !bytes.Equal(got.DER, rec.DER) {
		t.Fatalf("after revocation: %+v %v", got, err)
	}
}
