package acme

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"pkid/errs"
)

// clientSource is the client address that newAccount counts: the TCP
// peer's address, an IPv6 one cut to its /64 (a host may take any address
// in its subnet, as SLAAC privacy addresses do), or "" when there is none
// (a Unix socket). pkid terminates TLS itself, so no proxy header is
// believed: behind a proxy, every client is the proxy.
func clientSource(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}

// tooManyAccounts refuses a registration from a client address that has
// registered acme.new_accounts accounts in the last period, saying how
// long until the oldest of them ages out. Accounts are kept for good, so
// a client that registers at every run (its state thrown away, a CI job
// in a fresh container) or a loop would otherwise grow the store at every
// request, and each new account would start afresh against the bounds
// that count per account (acme.unfinished_orders, failed_validations).
// Registrations made at once may pass the bound by as many as are in
// flight: it bounds the store's growth, not a count to the unit.
func (s *Server) tooManyAccounts(ctx context.Context, source string) error {
	n, per := s.d.NewAccounts, s.d.NewAccountsPer
	if n <= 0 || source == "" {
		return nil
	}
	wait, err := s.windowFull(n, per, func(since time.Time, max int) (int, time.Time, error) {
		return s.d.Store.AccountsFrom(ctx, source, since, max)
	})
	if err != nil || wait == 0 {
		return err
	}
	return errs.Limited("acme.new_accounts", wait, "%s has registered %d ACME accounts in the last %s (acme.new_accounts): keep the client's account between runs (certbot, lego, Caddy and cert-manager keep it with their state), or ask the CA's operators to raise the setting; a new account is allowed from here in %s",
		source, n, per, errs.Rounded(wait))
}
