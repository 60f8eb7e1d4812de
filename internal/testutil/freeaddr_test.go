package testutil

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddr: the port is bindable and outside the ephemeral range, so
// no ":0" listener or outgoing connection elsewhere can be given it, and
// never handed out twice (400 random picks from ~16,000 ports would repeat
// one about 99 times in 100).
func TestFreeAddr(t *testing.T) {
	lo, hi := nonEphemeralRange()
	if lo < 1024 || hi > 65535 || hi-lo < 4000 {
		t.Fatalf("range %d-%d", lo, hi)
	}
	seen := map[string]bool{}
	for range 400 {
		addr := FreeAddr(t)
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if port < lo || port > hi {
			t.Fatalf("port %d outside %d-%d", port, lo, hi)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s not bindable: %v", addr, err)
		}
		l.Close()
	}
}
