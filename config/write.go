package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Defaults are the values `pkid init` writes.
type Defaults struct {
	Listen, ExternalURL, HTTPListen, PointersURL string
	DNSNames, IPAddresses                        []string
	// RoleDomains and RoleIPRanges replace the default role's
	// allowed_domains ([internal, localhost]) and allowed_ip_ranges
	// ([127.0.0.0/8]) when set: init narrows the role to the
	// intermediate's name constraints, so it allows nothing the CA would
	// refuse to sign.
	RoleDomains, RoleIPRanges []string
	// IntermediateKey is ca.intermediate_key: a PKCS#11 key URI, or ""
	// for the key file init writes (secrets/intermediate.key).
	IntermediateKey string
}

// KeyValue is a ca.intermediate_key value as pkid writes it into
// pkid.yaml: a key URI single-quoted (it holds ':', ';' and '?', and
// CheckKeyURI refuses quotes in one), a path as it is.
func KeyValue(key string) string {
	if IsKeyURI(key) {
		return "'" + key + "'"
	}
	return key
}

// flow writes items as a YAML flow list, each item as scalar writes it.
func flow(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = scalar(s)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// plainScalar matches the values YAML reads back as the same string when
// written bare, in block and in flow context: words of letters, digits,
// '.', '_', '/' and '-', joined by single colons (127.0.0.1:8443,
// https://ca.internal:8443, 10.0.0.0/8).
var plainScalar = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*(:[A-Za-z0-9._/-]+)*$`)

// scalar writes v bare when it reads back as itself, else double-quoted:
// "[::1]:8443" bare is a YAML list, "::1" in a list no value at all, so
// `pkid init --listen [::1]:8443 --ip ::1` would write a config that does
// not load.
func scalar(v string) string {
	if plainScalar.MatchString(v) {
		return v
	}
	return strconv.Quote(v)
}

// Render returns pkid.yaml in the contract's layout: flow-style lists, one
// key per line, the default role first, so people and scripts can edit it
// line by line.
func Render(d Defaults) []byte {
	domains, ranges := []string{"internal", "localhost"}, []string{"127.0.0.0/8"}
	if len(d.RoleDomains) > 0 {
		domains = d.RoleDomains
	}
	if len(d.RoleIPRanges) > 0 {
		ranges = d.RoleIPRanges
	}
	key := "secrets/intermediate.key"
	if d.IntermediateKey != "" {
		key = KeyValue(d.IntermediateKey)
	}
	return fmt.Appendf(nil, `listen: %s
external_url: %s
http_listen: %s
pointers_url: %s
tls: {dns_names: %s, ip_addresses: %s}
ca: {root_cert: certs/root.crt, intermediate_cert: certs/intermediate.crt, intermediate_key: %s, password_file: secrets/password}
storage: {driver: bbolt, path: db/pkid.db}
crl: {validity: 24h}
acme:
  http01_port: 80
  tlsalpn01_port: 443
  resolver: ""
  hosts: {}
roles:
  default:
    allowed_domains: %s
    allow_subdomains: true
    allow_bare_domains: false
    allow_wildcards: false
    allowed_ip_ranges: %s
    allowed_uri_patterns: ["spiffe://internal/*"]
    default_ttl: 24h
    max_ttl: 168h
    key_types: [ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072, rsa-4096]
    ext_key_usage: [server_auth, client_auth]
    renewal: {enabled: true, max_age: 720h}
    revocation_pointers: true
    acme: {enabled: true, challenges: [http-01, dns-01, tls-alpn-01], require_eab: false}
`, scalar(d.Listen), scalar(d.ExternalURL), scalar(d.HTTPListen), scalar(d.PointersURL), flow(d.DNSNames), flow(d.IPAddresses), key, flow(domains), flow(ranges))
}
