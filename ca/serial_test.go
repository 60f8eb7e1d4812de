package ca

import (
	"bytes"
	"math/big"
	"testing"
	"time"
)

func TestNewSerial(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	var prev *big.Int
	for i := range 1000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		n, err := newSerial(at)
		if err != nil {
			t.Fatal(err)
		}
		b := n.Bytes()
		// Positive and within 17 octets: DER needs no sign byte and stays
		// under RFC 5280's 20.
		if n.Sign() <= 0 || len(b) > 17 || b[0]&0x80 != 0 {
			t.Fatalf("serial %x: %d octets", n, len(b))
		}
		want := big.NewInt(at.UnixMilli()).FillBytes(make([]byte, 6))
		if !bytes.Equal(n.FillBytes(make([]byte, 17))[:6], want) {
			t.Fatalf("serial %x does not start with the time %x", n, want)
		}
		if seen[n.String()] {
			t.Fatalf("serial %x repeated", n)
		}
		seen[n.String()] = true
		// A later millisecond always sorts after: the store's index grows
		// at its end.
		if prev != nil && n.Cmp(prev) <= 0 {
			t.Fatalf("serial %x at %s sorts before %x", n, at, prev)
		}
		prev = n
	}
	// 88 random bits: two serials of the same millisecond differ in the
	// random octets.
	a, _ := newSerial(now)
	b, _ := newSerial(now)
	if a.Cmp(b) == 0 {
		t.Fatal("two serials of one millisecond are equal")
	}
}
