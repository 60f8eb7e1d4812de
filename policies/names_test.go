package policies

import (
	"net"
	"testing"
)

// TestRecordedName: a name typed by hand comes out as issuance records the
// same name (Decision.Names), for every kind of name.
func TestRecordedName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Web1.Internal.", "web1.internal"},
		{"*.Apps.Internal", "*.apps.internal"},
		{"10.0.0.1", "10.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"FD00:0:0:0:0:0:0:7", "fd00::7"},
		{"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
		{"spiffe://internal/ns/Web", "spiffe://internal/ns/Web"},
		{"Ops@Mail.Internal", "Ops@mail.internal"},
		{"fe80::1%eth0", "fe80::1%eth0"}, // no certificate names a zone
	} {
		if got := RecordedName(tc.in); got != tc.want {
			t.Errorf("RecordedName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if ip := net.ParseIP(tc.in); ip != nil {
			if got, issued := RecordedName(tc.in), ip.String(); got != issued {
				t.Errorf("RecordedName(%q) = %q, issuance records %q", tc.in, got, issued)
			}
		}
	}
}
