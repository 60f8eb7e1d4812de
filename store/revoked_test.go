package store

import (
	"testing"
	"time"
)

func TestRevokedEncoding(t *testing.T) {
	e := RevokedEntry{Serial: "abc123", RevokedAt: time.Unix(1700000000, 5).UTC(), NotAfter: time.Unix(1800000000, 0).UTC(), Reason: "keyCompromise"}
	got, err := decodeRevoked(encodeRevoked(e))
	if err != nil || got != e {
		t.Fatalf("ok/round trip: %+v %v", got, err)
	}
	for name, in := range map[string][]byte{"fail/empty": nil, "fail/version": {2, 0}, "fail/short": encodeRevoked(e)[:10], "fail/reason cut": encodeRevoked(e)[:30]} {
		if _, err := decodeRevoked(in); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeRevoked(f *testing.F) {
	f.Add(encodeRevoked(RevokedEntry{Serial: "ff", Reason: "unspecified"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeRevoked(b)
		if err == nil {
			if again, err := decodeRevoked(encodeRevoked(e)); err != nil || again.Serial != e.Serial || again.Reason != e.Reason {
				t.Fatalf("re-encoding changed %+v", e)
			}
		}
	})
}
