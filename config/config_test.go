package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/policies"
)

func base() string {
	return string(Render(Defaults{Listen: "127.0.0.1:8443", ExternalURL: "https://127.0.0.1:8443", HTTPListen: "127.0.0.1:8080", PointersURL: "http://127.0.0.1:8080", DNSNames: []string{"localhost"}, IPAddresses: []string{"127.0.0.1"}}))
}

func TestParse(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("/x/pkid.yaml", []byte(base()))
	if err != nil {
		t.Fatalf("ok/rendered default: %v", err)
	}
	r := c.Roles["default"]
	if r.Name != "default" || !r.AllowSubdomains || r.MaxTTL.Hours() != 168 || len(r.AllowedIPRanges) != 1 || !r.Pointers() {
		t.Fatalf("ok/rendered default: %+v", r)
	}
	// What is left out gets its default; what is written as 0 is refused
	// (cases below).
	lean := strings.NewReplacer("  http01_port: 80\n", "", "  tlsalpn01_port: 443\n", "", "crl: {validity: 24h}\n", "").Replace(base())
	if d, err := Parse("/x/pkid.yaml", []byte(lean)); err != nil || d.TLS.TTL != 24*time.Hour || d.CRL.Validity != 24*time.Hour || d.ACME.HTTP01Port != 80 || d.ACME.TLSALPN01Port != 443 {
		t.Fatalf("ok/defaults: %v %+v", err, d)
	}
	// acme's limits: the default, values written out, a value left out.
	limits := []struct {
		key   string
		get   func(*Config) any
		def   any
		cases map[string]any
	}{
		{"failed_validations", func(c *Config) any { return c.ACME.FailedValidations }, FailureLimit{10, time.Hour},
			map[string]any{"{failures: 5}": FailureLimit{5, time.Hour}, "{failures: 0}": FailureLimit{0, time.Hour}, "{failures: 3, per: 10m}": FailureLimit{3, 10 * time.Minute}}},
		{"unfinished_orders", func(c *Config) any { return c.ACME.UnfinishedOrders }, OrderLimit{300, time.Hour},
			map[string]any{"{orders: 50}": OrderLimit{50, time.Hour}, "{orders: 0}": OrderLimit{0, time.Hour}, "{orders: 1000, per: 24h}": OrderLimit{1000, 24 * time.Hour}}},
		{"new_accounts", func(c *Config) any { return c.ACME.NewAccounts }, AccountLimit{100, time.Hour},
			map[string]any{"{accounts: 10}": AccountLimit{10, time.Hour}, "{accounts: 0}": AccountLimit{0, time.Hour}, "{accounts: 20, per: 3h}": AccountLimit{20, 3 * time.Hour}}},
	}
	for _, l := range limits {
		if got := l.get(c); got != l.def {
			t.Fatalf("ok/acme.%s default: %+v, want %+v", l.key, got, l.def)
		}
		for in, want := range l.cases {
			y := strings.Replace(base(), "  hosts: {}\n", "  hosts: {}\n  "+l.key+": "+in+"\n", 1)
			if d, err := Parse("/x/pkid.yaml", []byte(y)); err != nil || l.get(d) != want {
				t.Fatalf("ok/acme.%s %s: %v %+v", l.key, in, err, d)
			}
		}
	}
	limited := strings.Replace(base(), "    acme: {enabled: true", "    rate_limit: {certificates: 100, per: 1h}\n    acme: {enabled: true", 1)
	if d, err := Parse("/x/pkid.yaml", []byte(limited)); err != nil || *d.Roles["default"].RateLimit != (policies.RateLimit{Certificates: 100, Per: time.Hour}) || c.Roles["default"].RateLimit != nil {
		t.Fatalf("ok/rate limit: %v", err)
	}
	kept := strings.Replace(base(), "storage: {driver: bbolt, path: db/pkid.db}", "storage: {driver: bbolt, path: db/pkid.db, retention: 2160h}", 1)
	if c.Storage.MinFreeMB != 1024 {
		t.Fatalf("storage.min_free_mb default %d, want 1024", c.Storage.MinFreeMB)
	}
	if d, err := Parse("/x/pkid.yaml", []byte(kept)); err != nil || *d.Storage.Retention != 90*24*time.Hour || c.Storage.Retention != nil {
		t.Fatalf("ok/retention: %v", err)
	}
	if c.AdminSocketPath() != "/x/pkid.sock" {
		t.Fatalf("ok/admin socket beside pkid.yaml: %s", c.AdminSocketPath())
	}
	if d, err := Parse("/x/pkid.yaml", []byte(base()+"admin_socket: run/pkid.sock\n")); err != nil || d.AdminSocketPath() != "/x/run/pkid.sock" {
		t.Fatalf("ok/admin socket elsewhere: %v", err)
	}
	if c.Resolve("db/pkid.db") != "/x/db/pkid.db" {
		t.Fatal(c.Resolve("db/pkid.db"))
	}
	for _, empty := range []string{"", "\n", "# nothing yet\n"} {
		if _, err := Parse("/x/pkid.yaml", []byte(empty)); err == nil || err.Error() != "/x/pkid.yaml: the file is empty; pkid init --dir D writes one" {
			t.Fatalf("fail/empty file %q: %v", empty, err)
		}
	}
	cases := []struct{ name, from, to, want string }{
		// What the decoder refuses is said as the checks after it say it:
		// the key's path, what is wrong and what would do, and the line.
		{"fail/unknown key", "    allow_wildcards: false\n", "    allow_wildcard: true\n", "roles.default: unknown key allow_wildcard (line 19)"},
		{"fail/unknown key at the top", "crl: {validity: 24h}\n", "crl: {validity: 24h}\nbogus: 1\n", "/x/pkid.yaml: unknown key bogus (line 9)"},
		{"fail/unknown key in a flow mapping", "crl: {validity: 24h}", "crl: {validity: 24h, valid: 1h}", "crl: unknown key valid (line 8)"},
		{"fail/bad duration", "max_ttl: 168h", "max_ttl: forever", `roles.default.max_ttl: "forever" is not a duration: write one like 24h, 90m or 30s (line 23)`},
		{"fail/duration in days", "max_ttl: 168h", "max_ttl: 30d", `roles.default.max_ttl: "30d" is not a duration: write days as hours (720h) (line 23)`},
		{"fail/duration without a unit", "max_ttl: 168h", "max_ttl: 3600", `roles.default.max_ttl: "3600" is not a duration: give it a unit, e.g. 3600s (line 23)`},
		{"fail/long bad duration", "max_ttl: 168h", "max_ttl: one-hundred-and-sixty-eight-hours", `roles.default.max_ttl: "one-hundred-and-sixty-eight-hours" is not a duration`},
		{"fail/duration in a flow mapping", "crl: {validity: 24h}", "crl: {validity: 1 day}", `crl.validity: "1 day" is not a duration`},
		{"fail/not a list", "allowed_domains: [internal, localhost]", "allowed_domains: internal", `roles.default.allowed_domains: want a list, e.g. [internal], not "internal" (line 16)`},
		{"fail/not a bool", "allow_subdomains: true", "allow_subdomains: maybe", `roles.default.allow_subdomains: "maybe" is not true or false (line 17)`},
		{"fail/not a number", "http01_port: 80", "http01_port: eighty", `acme.http01_port: "eighty" is not a whole number (line 10)`},
		{"fail/limit not a mapping", "hosts: {}\n", "hosts: {}\n  unfinished_orders: 300\n", `acme.unfinished_orders: want {orders: 300, per: 1h}, not "300" (line 14)`},
		{"fail/rate limit not a mapping", "    acme: {enabled: true", "    rate_limit: 100\n    acme: {enabled: true", `roles.default.rate_limit: want {certificates: 100, per: 1h}, not "100"`},
		{"fail/section not a mapping", "crl: {validity: 24h}", "crl: [24h]", "crl: want a mapping ({key: value, ...}), not a list (line 8)"},
		{"fail/mapping for a single value", "listen: 127.0.0.1:8443", "listen: {port: 8443}", "listen: want a single value, not a mapping (line 1)"},
		{"fail/not yaml", "crl: {validity: 24h}", "crl: {validity: 24h", "yaml: line"},
		{"fail/max below default", "max_ttl: 168h", "max_ttl: 1h", "roles.default.max_ttl: must be at least default_ttl"},
		{"fail/default under a second", "default_ttl: 24h", "default_ttl: 500ms", "roles.default.default_ttl: must be at least 1s"},
		{"fail/key type", "ed25519, rsa-2048", "ed25519, rsa-1024", `roles.default.key_types: "rsa-1024"`},
		{"fail/eku", "[server_auth, client_auth]", "[server_auth, code_signing]", `"code_signing"`},
		{"fail/ip range", "[127.0.0.0/8]", "[127.0.0.0/33]", "127.0.0.0/33"},
		{"fail/listen", "listen: 127.0.0.1:8443", "listen: nowhere", "listen: want host:port"},
		{"fail/external url http", "external_url: https://", "external_url: http://", "external_url"},
		{"fail/domain with wildcard", "[internal, localhost]", "[\"*.internal\"]", "allowed_domains"},
		{"fail/challenge", "[http-01, dns-01, tls-alpn-01]", "[http-02]", `"http-02"`},
		{"fail/driver", "driver: bbolt", "driver: mysql", "storage.driver"},
		{"fail/server name", "dns_names: [localhost]", "dns_names: [Local_Host]", `tls.dns_names: "Local_Host": write it in lower case`},
		{"fail/listen port", "listen: 127.0.0.1:8443", "listen: 127.0.0.1:99999", "listen: want host:port with a port of 1-65535"},
		{"fail/domain with a leading dot", "[internal, localhost]", "[.internal]", `".internal": empty label`},
		{"fail/domain with an underscore", "[internal, localhost]", "[my_corp.internal]", `"my_corp.internal": label`},
		{"fail/ip range with host bits", "[127.0.0.0/8]", "[127.0.0.1/8]", "127.0.0.1/8 has host bits set; write 127.0.0.0/8"},
		{"fail/ipv4-mapped ip range", "[127.0.0.0/8]", "[\"::ffff:127.0.0.0/104\"]", "IPv4-mapped range"},
		{"fail/server ip", "ip_addresses: [127.0.0.1]}", "ip_addresses: [127.0.0.300]}", `tls.ip_addresses: "127.0.0.300" is not an IP address`},
		{"fail/server ttl", "tls: {dns_names:", "tls: {ttl: 10ms, dns_names:", "tls.ttl: must be at least 1s"},
		{"fail/crl validity", "crl: {validity: 24h}", "crl: {validity: 0s}", "crl.validity: must be at least 1s"},
		{"fail/http01 port", "http01_port: 80\n", "http01_port: 0\n", "acme.http01_port: must be 1-65535"},
		{"fail/tls-alpn-01 port", "tlsalpn01_port: 443\n", "tlsalpn01_port: 70000\n", "acme.tlsalpn01_port: must be 1-65535"},
		{"fail/resolver", "resolver: \"\"", "resolver: \"10.0.0.53\"", `acme.resolver: want host:port (port 1-65535) or empty, got "10.0.0.53"`},
		{"fail/static host", "hosts: {}", "hosts: {db.internal: 10.0.0.x}", `acme.hosts.db.internal: "10.0.0.x" is not an IP address`},
		{"fail/log format", "crl: {validity: 24h}\n", "crl: {validity: 24h}\nlog: {format: xml}\n", `log.format: want json or text, got "xml"`},
		{"fail/retention too short", "storage: {driver: bbolt, path: db/pkid.db}", "storage: {driver: bbolt, path: db/pkid.db, retention: 24h}", "storage.retention: must be at least 168h0m0s"},
		{"fail/retention of nothing", "storage: {driver: bbolt, path: db/pkid.db}", "storage: {driver: bbolt, path: db/pkid.db, retention: 0s}", "storage.retention: must be at least"},
		{"fail/min_free_mb 0", "storage: {driver: bbolt, path: db/pkid.db}", "storage: {driver: bbolt, path: db/pkid.db, min_free_mb: 0}", "storage.min_free_mb: must be at least 1 (MiB)"},
		{"fail/failed validations below 0", "hosts: {}\n", "hosts: {}\n  failed_validations: {failures: -1, per: 1h}\n", "acme.failed_validations: want {failures: N, per: DURATION} with N ≥ 0"},
		{"fail/failed validations per nothing", "hosts: {}\n", "hosts: {}\n  failed_validations: {failures: 3, per: 0s}\n", "acme.failed_validations: want"},
		{"fail/unfinished orders below 0", "hosts: {}\n", "hosts: {}\n  unfinished_orders: {orders: -1, per: 1h}\n", "acme.unfinished_orders: want {orders: N, per: DURATION} with N ≥ 0"},
		{"fail/unfinished orders per nothing", "hosts: {}\n", "hosts: {}\n  unfinished_orders: {orders: 3, per: 0s}\n", "acme.unfinished_orders: want"},
		{"fail/unfinished orders key", "hosts: {}\n", "hosts: {}\n  unfinished_orders: {pending: 3}\n", "unknown key pending"},
		{"fail/new accounts below 0", "hosts: {}\n", "hosts: {}\n  new_accounts: {accounts: -1, per: 1h}\n", "acme.new_accounts: want {accounts: N, per: DURATION} with N ≥ 0"},
		{"fail/new accounts per nothing", "hosts: {}\n", "hosts: {}\n  new_accounts: {accounts: 3, per: -1h}\n", "acme.new_accounts: want"},
		{"fail/new accounts not a mapping", "hosts: {}\n", "hosts: {}\n  new_accounts: 100\n", `acme.new_accounts: want {accounts: 100, per: 1h}, not "100" (line 14)`},
		{"fail/rate limit of no certificates", "    acme: {enabled: true", "    rate_limit: {certificates: 0, per: 1h}\n    acme: {enabled: true", "roles.default.rate_limit: want {certificates: N, per: DURATION} with N ≥ 1"},
		{"fail/rate limit without a period", "    acme: {enabled: true", "    rate_limit: {certificates: 5}\n    acme: {enabled: true", "roles.default.rate_limit: want"},
		{"fail/rate limit key", "    acme: {enabled: true", "    rate_limit: {certs: 5, per: 1h}\n    acme: {enabled: true", "unknown key certs"},
		{"fail/ca file missing", "password_file: secrets/password}", "password_file: \"\"}", "ca.password_file: required"},
		{"fail/oidc issuer over http", "    acme: {enabled: true", "    oidc: {issuer: \"http://ci.example\", audience: pkid, claims: {repository: org/app}}\n    acme: {enabled: true", `roles.default.oidc.issuer: want an https URL, got "http://ci.example"`},
		{"fail/oidc without audience", "    acme: {enabled: true", "    oidc: {issuer: \"https://ci.example\", claims: {repository: org/app}}\n    acme: {enabled: true", "roles.default.oidc.audience: required"},
		{"fail/oidc without claims", "    acme: {enabled: true", "    oidc: {issuer: \"https://ci.example\", audience: pkid}\n    acme: {enabled: true", "roles.default.oidc.claims: name at least one"},
		{"fail/oidc ca_file missing", "    acme: {enabled: true", "    oidc: {issuer: \"https://ci.example\", audience: pkid, ca_file: ci.pem, claims: {repository: org/app}}\n    acme: {enabled: true", "roles.default.oidc.ca_file: open /x/ci.pem: no such file or directory"},
		{"fail/oidc ca_file without a certificate", "    acme: {enabled: true", "    oidc: {issuer: \"https://ci.example\", audience: pkid, ca_file: " + notPEM + ", claims: {repository: org/app}}\n    acme: {enabled: true", "roles.default.oidc.ca_file: " + notPEM + " holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(base(), tc.from, tc.to, 1)
			if in == base() {
				t.Fatalf("replacement %q not found", tc.from)
			}
			_, err := Parse("/x/pkid.yaml", []byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "/x/pkid.yaml: ") {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzParse: any bytes give a config or an error naming the file, never a
// panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base()))
	f.Add([]byte("roles: {default: {max_ttl: -1h}}"))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte(strings.Replace(base(), "max_ttl: 168h", "max_ttl: 7d", 1)))
	f.Add([]byte(strings.Replace(base(), "crl: {validity: 24h}", "crl: {validity: [1], x: &a 2, y: *a}", 1)))
	f.Add([]byte(strings.Replace(base(), "intermediate_key: secrets/intermediate.key,", "intermediate_key: 'pkcs11:module-path=/m.so;token=t;id=01;object=k?pin-source=pin',", 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse("/x/pkid.yaml", in)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "/x/pkid.yaml: ") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}

// TestRenderIPv6: values YAML would misread bare ("[::1]:8443" is a list,
// "::1" in a list is nothing) are written quoted and load back as given;
// the usual values stay bare, in the contract's layout.
func TestRenderIPv6(t *testing.T) {
	d := Defaults{Listen: "[::1]:8443", ExternalURL: "https://[::1]:8443", HTTPListen: "[::1]:8080", PointersURL: "http://[::1]:8080",
		DNSNames: []string{"localhost"}, IPAddresses: []string{"::1", "127.0.0.1", "2001:db8::1"}, RoleIPRanges: []string{"fd00::/8", "127.0.0.0/8"}}
	c, err := Parse("/x/pkid.yaml", Render(d))
	if err != nil {
		t.Fatalf("rendered IPv6 config does not load: %v\n%s", err, Render(d))
	}
	if c.Listen != d.Listen || c.ExternalURL != d.ExternalURL || c.HTTPListen != d.HTTPListen || c.PointersURL != d.PointersURL ||
		strings.Join(c.TLS.IPAddresses, ",") != "::1,127.0.0.1,2001:db8::1" || len(c.Roles["default"].AllowedIPRanges) != 2 {
		t.Fatalf("loaded back %+v %+v", c, c.TLS)
	}
	for _, line := range []string{"listen: 127.0.0.1:8443\n", "external_url: https://127.0.0.1:8443\n", "tls: {dns_names: [localhost], ip_addresses: [127.0.0.1]}\n", "    allowed_ip_ranges: [127.0.0.0/8]\n"} {
		if !strings.Contains(base(), line) {
			t.Errorf("default layout lost %q", line)
		}
	}
}
