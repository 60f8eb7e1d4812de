package acme

import (
	"net"
	"syscall"
	"testing"
)

// TestValidationDialerNoKeepAlive: a validation's connection carries one
// request, so its socket is left without TCP keep-alive (Go's dialer turns
// it on by default, at four setsockopt calls per connection).
func TestValidationDialerNoKeepAlive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		name   string
		dialer *net.Dialer
		want   int
	}{
		{"validation", validationDialer(), 0},
		{"Go's default", &net.Dialer{}, 1}, // the check can tell the two apart
	} {
		conn, err := tc.dialer.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var on int
		var serr error
		raw.Control(func(fd uintptr) { on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		conn.Close()
		if serr != nil || on != tc.want {
			t.Errorf("%s dialer: SO_KEEPALIVE %d (%v), want %d", tc.name, on, serr, tc.want)
		}
	}
}
