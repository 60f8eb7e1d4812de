package acme

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// dialTimeout bounds one connection attempt of a validation.
const dialTimeout = 5 * time.Second

// validationDialer dials a validation's connection: one request, then
// closed, so no TCP keep-alive probes (which cost four setsockopt calls
// per connection to set up).
func validationDialer() *net.Dialer {
	return &net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
}

// dialFirst connects, with dial (plain TCP or TLS), to the first of name's
// addresses that validation may reach (checkDialable) and that answers on
// port. The error is the last dial's, or the refusal when no address could
// be dialled at all.
func dialFirst(ctx context.Context, name string, addrs []netip.Addr, port uint16, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (net.Conn, error) {
	err := fmt.Errorf("%s has no address", name)
	dialled := false
	for _, a := range addrs {
		if refused := checkDialable(name, a); refused != nil {
			if !dialled {
				err = refused
			}
			continue
		}
		conn, derr := dial(ctx, "tcp", netip.AddrPortFrom(a, port).String())
		if derr == nil {
			return conn, nil
		}
		err, dialled = derr, true
	}
	return nil, err
}

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
