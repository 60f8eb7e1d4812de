package ca

import (
	"net/url"

	"pkid/errs"
)

func parseURI(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return nil, errs.New(errs.Malformed, "uri %q is not an absolute URI", s)
	}
	return u, nil
}
