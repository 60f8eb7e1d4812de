package acme

import (
	"fmt"
	"net/netip"
)

// checkDialable refuses the addresses a validation never needs and that a
// CA must not be steered to: link-local (169.254.169.254 and fe80::, where
// cloud metadata services answer), unspecified, multicast and broadcast.
// Whoever controls a name's DNS record or its HTTP answer (a redirect)
// chooses where the CA connects; loopback and private ranges stay allowed,
// because an internal CA validates internal hosts.
func checkDialable(name string, a netip.Addr) error {
	a = a.Unmap()
	var kind string
	switch {
	case a.IsLinkLocalUnicast():
		kind = "a link-local address, where cloud metadata services answer"
	case a.IsUnspecified():
		kind = "the unspecified address"
	case a.IsMulticast():
		kind = "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		kind = "the broadcast address"
	default:
		return nil
	}
	return connectionProblem(fmt.Sprintf("%s resolves to %s, %s: validation never connects there", name, a, kind))
}
