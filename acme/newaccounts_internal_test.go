package acme

import (
	"net/http"
	"testing"
)

// TestClientSource: the address newAccount counts registrations by. An
// IPv6 client is its /64 (a host may take any address there), an IPv4
// one mapped into IPv6 is the IPv4 address, a zone is dropped, and a peer
// with no IP address (a Unix socket) is not counted.
func TestClientSource(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"10.0.0.5:51234", "10.0.0.5"},
		{"127.0.0.2:443", "127.0.0.2"},
		{"[::ffff:10.0.0.5]:51234", "10.0.0.5"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"[::1]:443", "::/64"},
		{"[fe80::1%eth0]:443", "fe80::/64"},
		{"@", ""},
		{"", ""},
		{"10.0.0.5", ""},
	} {
		if got := clientSource(&http.Request{RemoteAddr: tc.remote}); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.remote, got, tc.want)
		}
	}
}
