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
		// Positive and within 20 octets with the top bit clear: DER needs
		// no sign byte, RFC 5280's limit holds.
		if n.Sign() <= 0 || len(b) > 20 || (len(b) == 20 && b[0]&0x80 != 0) {
			t.Fatalf("serial %x: %d octets", n, len(b))
		}
		want := big.NewInt(at.UnixMilli() % (1 << 31)).FillBytes(make([]byte, 4))
		if !bytes.Equal(n.FillBytes(make([]byte, 20))[:4], want) {
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
	// 128 random bits: serials of one millisecond differ in them, and
	// every bit position is seen both set and clear.
	var or, and [16]byte
	for i := range and {
		and[i] = 0xff
	}
	for range 64 {
		n, _ := newSerial(now)
		r := n.FillBytes(make([]byte, 20))[4:]
		for i := range r {
			or[i] |= r[i]
			and[i] &= r[i]
		}
		if seen[n.String()] {
			t.Fatalf("serial %x repeated", n)
		}
		seen[n.String()] = true
	}
	for i := range or {
		if or[i] != 0xff || and[i] != 0 {
			t.Fatalf("random octet %d: or %08b and %08b", i, or[i], and[i])
		}
	}
	// The prefix wraps after 2^31 ms and stays positive.
	wrap, _ := newSerial(time.UnixMilli(1<<31 + 5))
	if p := wrap.FillBytes(make([]byte, 20))[:4]; !bytes.Equal(p, []byte{0, 0, 0, 5}) {
		t.Fatalf("prefix after the wrap %x", p)
	}
}
