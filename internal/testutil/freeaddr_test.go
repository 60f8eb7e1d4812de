package testutil

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddr: the port is bindable and outside the ephemeral range, so
// no ":0" listener or outgoing connection elsewhere can be given it.
func TestFreeAddr(t *testing.T) {
	lo, hi := nonEphemeralRange()
	if lo < 1024 || hi > 65535 || hi-lo < 4000 {
		t.Fatalf("range %d-%d", lo, hi)
	}
	for range 20 {
		addr := FreeAddr(t)
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
