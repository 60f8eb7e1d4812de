package policies

import (
	"net/netip"
	"net/url"
	"strings"
)

// CheckBoundNames reports whether a certificate for exactly names (told
// apart as RecordedName tells them) may be issued under r as far as names go
// (key and lifetime come with the request): nil, or a Rejection with the
// reasons that concern names. An enrollment token bound to names its role
// refuses could never be used, so creating one is refused.
func CheckBoundNames(r *Role, names []string) error {
	req := &Request{}
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil && a.Zone() == "" {
			req.IPAddresses = append(req.IPAddresses, a)
			continue
		}
		if strings.Contains(n, ":") {
			u, err := url.Parse(n)
			if err != nil {
				return &Rejection{Role: r.Name, Reasons: []Reason{{Field: "uri", Value: n, Message: "not a URI: " + err.Error()}}}
			}
			req.URIs = append(req.URIs, u)
			continue
		}
		if strings.Contains(n, "@") {
			req.Emails = append(req.Emails, n)
			continue
		}
		req.DNSNames = append(req.DNSNames, n)
	}
	_, err := Evaluate(r, req)
	rej, ok := err.(*Rejection)
	if !ok {
		return err
	}
	var nameReasons []Reason
	for _, why := range rej.Reasons {
		switch why.Field {
		case "dns", "ip", "uri", "email", "names":
			nameReasons = append(nameReasons, why)
		}
	}
	if len(nameReasons) == 0 {
		return nil
	}
	return &Rejection{Role: r.Name, Reasons: nameReasons}
}
