package main_test

import (
	"strings"
	"testing"
)

// TestDurationFlags: a duration flag that is not one (a TTL in days, a
// validity in years) is refused with how to write it, before anything
// is read or written (exit 2), and a good one is taken.
func TestDurationFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "--config", "/nonexistent/pkid.yaml", "--role", "default", "--ttl", "30d"}, `invalid argument "30d" for "--ttl" flag: not a duration: write days as hours (720h)`},
		{[]string{"ca", "root-crl", "--dir", "/nonexistent", "--validity", "1y"}, `invalid argument "1y" for "--validity" flag: not a duration: write one like 24h, 90m or 30s`},
		{[]string{"ca", "rotate-intermediate", "--dir", "/nonexistent", "--validity", "43800"}, `invalid argument "43800" for "--validity" flag: not a duration: give it a unit, e.g. 43800s`},
		{[]string{"cert", "renew", "--exec-timeout", "5 minutes"}, `invalid argument "5 minutes" for "--exec-timeout" flag: not a duration`},
	} {
		if r := pkid(t, nil, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("fail/%s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	// A good duration gets past the flags, to the missing config.
	if r := pkid(t, nil, "token", "create", "--config", "/nonexistent/pkid.yaml", "--role", "default", "--ttl", "720h"); r.code != 1 || strings.Contains(r.stderr, "--ttl") {
		t.Errorf("ok/--ttl 720h: exit %d, %q; want the config's error, exit 1", r.code, r.stderr)
	}
}
