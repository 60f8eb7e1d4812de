// Package config reads and writes pkid.yaml. It rejects unknown keys and
// invalid values at start, naming the file, the key and the reason, so a
// typo can never silently widen a role.
package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"pkid/policies"
)

// Config is pkid.yaml.
type Config struct {
	Listen      string  `yaml:"listen"`
	ExternalURL string  `yaml:"external_url"`
	HTTPListen  string  `yaml:"http_listen"`
	PointersURL string  `yaml:"pointers_url"`
	TLS         TLS     `yaml:"tls"`
	CA          CA      `yaml:"ca"`
	Storage     Storage `yaml:"storage"`
	CRL         CRL     `yaml:"crl"`
	ACME        ACME    `yaml:"acme"`
	Log         Log     `yaml:"log"`
	// AdminSocket is where serve listens for the admin commands (default
	// pkid.sock beside pkid.yaml). A CA directory mounted read-only (a
	// Kubernetes ConfigMap or Secret) needs it on a writable path.
	AdminSocket string                    `yaml:"admin_socket,omitempty"`
	Roles       map[string]*policies.Role `yaml:"roles"`

	// Path is the file this was read from; relative paths resolve against
	// its directory.
	Path string `yaml:"-"`
}

// TLS is the server's own certificate, issued from the intermediate outside
// any role.
type TLS struct {
	DNSNames    []string `yaml:"dns_names,flow"`
	IPAddresses []string `yaml:"ip_addresses,flow"`
	// TTL of the server certificate (default 24h); it renews at two thirds.
	TTL time.Duration `yaml:"ttl,omitempty"`
}

// CA names the CA files.
type CA struct {
	RootCert         string `yaml:"root_cert"`
	IntermediateCert string `yaml:"intermediate_cert"`
	IntermediateKey  string `yaml:"intermediate_key"`
	PasswordFile     string `yaml:"password_file"`
	// RootCRL is the root's CRL file (default certs/root.crl).
	RootCRL string `yaml:"root_crl,omitempty"`
}

// Storage selects the backend.
type Storage struct {
	Driver string `yaml:"driver"`
	Path   string `yaml:"path,omitempty"`
	DSN    string `yaml:"dsn,omitempty"`
	// Retention, if set, is how long a certificate's record is kept after
	// it expires; absent, every record is kept for good.
	Retention *time.Duration `yaml:"retention,omitempty"`
	// MinFreeMB is the free space, in MiB, on the store's filesystem below
	// which /healthz warns (default 1024): a full disk stops issuance, and
	// the warning comes while there is time to act.
	MinFreeMB int `yaml:"min_free_mb,omitempty"`
}

// MinRetention bounds storage.retention from below: an expired
// certificate stays known (OCSP, /v1/certs, ARI) for a week at least.
const MinRetention = 7 * 24 * time.Hour

// CRL settings.
type CRL struct {
	Validity time.Duration `yaml:"validity"`
}

// ACME settings shared by every role's directory.
type ACME struct {
	HTTP01Port    int               `yaml:"http01_port"`
	TLSALPN01Port int               `yaml:"tlsalpn01_port"`
	Resolver      string            `yaml:"resolver"`
	Hosts         map[string]string `yaml:"hosts"`
	// AuthzReuse lets a valid authorization serve the same account's new
	// orders for this long after validation (default 0: every order
	// validates afresh).
	AuthzReuse time.Duration `yaml:"authz_reuse,omitempty"`
	// FailedValidations bounds how often one account may fail to validate
	// one identifier: past it, newOrder refuses that identifier to that
	// account (429 rateLimited, with Retry-After) until one more is
	// allowed. A client retrying in a loop at a name it cannot validate
	// (a firewall, a wrong DNS record) would otherwise add an order and
	// its authorizations to the store every few seconds, each kept a
	// week. Default {failures: 10, per: 1h}; failures: 0 turns it off.
	FailedValidations FailureLimit `yaml:"failed_validations,flow,omitempty"`
	// UnfinishedOrders bounds the orders one account may leave unfinished:
	// past Orders made in the last Per that did not end in a certificate
	// (pending, ready or invalid), newOrder refuses the account (429
	// rateLimited, with Retry-After) until the oldest of them is Per old.
	// A client that orders and never validates (a broken solver, a loop)
	// would otherwise add an order and its authorizations to the store
	// at every request, each kept a week after it expires; one that
	// finishes its orders never meets the bound. Default {orders: 300,
	// per: 1h}; orders: 0 turns it off.
	UnfinishedOrders OrderLimit `yaml:"unfinished_orders,flow,omitempty"`
	// NewAccounts bounds the accounts one client address (an IPv6 /64)
	// may register: past Accounts in the last Per, newAccount refuses it
	// (429 rateLimited, with Retry-After) until the oldest is Per old.
	// Accounts are kept for good, so a client that registers at every
	// run, or a loop, would otherwise grow the store without end, and
	// start each new account afresh against the per-account bounds.
	// Registrations with an external account binding are not refused.
	// Default {accounts: 100, per: 1h}; accounts: 0 turns it off.
	NewAccounts AccountLimit `yaml:"new_accounts,flow,omitempty"`
}

// AccountLimit allows Accounts in any Per.
type AccountLimit struct {
	Accounts int           `yaml:"accounts"`
	Per      time.Duration `yaml:"per"`
}

// OrderLimit allows Orders in any Per.
type OrderLimit struct {
	Orders int           `yaml:"orders"`
	Per    time.Duration `yaml:"per"`
}

// FailureLimit allows Failures per Per: all at once, then one every
// Per/Failures (counted like a role's rate_limit, in the store).
type FailureLimit struct {
	Failures int           `yaml:"failures"`
	Per      time.Duration `yaml:"per"`
}

// Log settings: format "json" (default) or "text".
type Log struct {
	Format string `yaml:"format,omitempty"`
	Level  string `yaml:"level,omitempty"`
}

// Load reads, defaults and validates path.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, raw)
}

// Parse decodes raw (read from path) strictly and validates it.
func Parse(path string, raw []byte) (*Config, error) {
	// Numbers and durations get their defaults before decoding, so that
	// one written as 0 is refused rather than read as absent.
	c := Config{TLS: TLS{TTL: 24 * time.Hour}, CRL: CRL{Validity: 24 * time.Hour}, ACME: ACME{HTTP01Port: 80, TLSALPN01Port: 443, FailedValidations: FailureLimit{Failures: 10, Per: time.Hour},
		UnfinishedOrders: OrderLimit{Orders: 300, Per: time.Hour}, NewAccounts: AccountLimit{Accounts: 100, Per: time.Hour}}, Storage: Storage{MinFreeMB: 1024}}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; pkid init --dir D writes one", path)
		}
		return nil, fmt.Errorf("%s: %s", path, explain(raw, err))
	}
	c.Path = path
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.CA.RootCRL == "" {
		c.CA.RootCRL = "certs/root.crl"
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = "bbolt"
	}
	if c.Storage.Path == "" {
		c.Storage.Path = "db/pkid.db"
	}
	for name, r := range c.Roles {
		if r != nil {
			r.Name = name
			if r.OIDC != nil {
				r.OIDC.CAFile = c.Resolve(r.OIDC.CAFile)
			}
		}
	}
}

// Resolve makes p absolute against the config's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// AdminSocketPath is the admin socket's path: admin_socket resolved, or
// pkid.sock in the CA directory.
func (c *Config) AdminSocketPath() string {
	if c.AdminSocket != "" {
		return c.Resolve(c.AdminSocket)
	}
	return filepath.Join(c.Dir(), "pkid.sock")
}

// Dir is the CA directory (where pkid.yaml lives).
func (c *Config) Dir() string { return filepath.Dir(c.Path) }

var roleNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	for _, a := range []struct{ key, v string }{{"listen", c.Listen}, {"http_listen", c.HTTPListen}} {
		if !hostPort(a.v) {
			bad(a.key, "want host:port with a port of 1-65535, got %q", a.v)
		}
	}
	if u, err := url.Parse(c.ExternalURL); err != nil || u.Scheme != "https" || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" {
		bad("external_url", "want https://host[:port] with no path, got %q", c.ExternalURL)
	}
	if u, err := url.Parse(c.PointersURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("pointers_url", "want http://host[:port], got %q", c.PointersURL)
	}
	if len(c.TLS.DNSNames)+len(c.TLS.IPAddresses) == 0 {
		bad("tls", "name at least one of dns_names or ip_addresses for the server certificate")
	}
	for _, n := range c.TLS.DNSNames {
		if why := hostnameSyntax(n); why != "" {
			bad("tls.dns_names", "%q: %s", n, why)
		}
	}
	for _, ip := range c.TLS.IPAddresses {
		if _, err := netip.ParseAddr(ip); err != nil {
			bad("tls.ip_addresses", "%q is not an IP address", ip)
		}
	}
	if c.TLS.TTL < time.Second {
		bad("tls.ttl", "must be at least 1s")
	}
	if IsKeyURI(c.CA.IntermediateKey) {
		if why := CheckKeyURI(c.CA.IntermediateKey); why != "" {
			bad("ca.intermediate_key", "%s", why)
		}
	}
	for key, v := range map[string]string{"ca.root_cert": c.CA.RootCert, "ca.intermediate_cert": c.CA.IntermediateCert, "ca.intermediate_key": c.CA.IntermediateKey, "ca.password_file": c.CA.PasswordFile} {
		if v == "" {
			bad(key, "required")
		}
	}
	if c.Storage.Driver != "bbolt" {
		bad("storage.driver", "%q is not supported (supported: bbolt)", c.Storage.Driver)
	}
	if c.Storage.MinFreeMB < 1 {
		bad("storage.min_free_mb", "must be at least 1 (MiB)")
	}
	if r := c.Storage.Retention; r != nil && *r < MinRetention {
		bad("storage.retention", "must be at least %s (leave it out to keep every record)", MinRetention)
	}
	if c.CRL.Validity < time.Second {
		bad("crl.validity", "must be at least 1s")
	}
	if c.ACME.HTTP01Port < 1 || c.ACME.HTTP01Port > 65535 {
		bad("acme.http01_port", "must be 1-65535")
	}
	if c.ACME.TLSALPN01Port < 1 || c.ACME.TLSALPN01Port > 65535 {
		bad("acme.tlsalpn01_port", "must be 1-65535")
	}
	if c.ACME.Resolver != "" {
		if !hostPort(c.ACME.Resolver) {
			bad("acme.resolver", "want host:port (port 1-65535) or empty, got %q", c.ACME.Resolver)
		}
	}
	for _, l := range []struct {
		key, count, example string
		n                   int
		per                 time.Duration
	}{
		{"acme.failed_validations", "failures", examples["config.FailureLimit"], c.ACME.FailedValidations.Failures, c.ACME.FailedValidations.Per},
		{"acme.unfinished_orders", "orders", examples["config.OrderLimit"], c.ACME.UnfinishedOrders.Orders, c.ACME.UnfinishedOrders.Per},
		{"acme.new_accounts", "accounts", examples["config.AccountLimit"], c.ACME.NewAccounts.Accounts, c.ACME.NewAccounts.Per},
	} {
		if l.n < 0 || (l.n > 0 && l.per <= 0) {
			bad(l.key, "want {%s: N, per: DURATION} with N ≥ 0 (0: no limit) and a positive duration, e.g. %s", l.count, l.example)
		}
	}
	for h, ip := range c.ACME.Hosts {
		if _, err := netip.ParseAddr(ip); err != nil {
			bad("acme.hosts."+h, "%q is not an IP address", ip)
		}
	}
	if c.Log.Format != "" && c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "want json or text, got %q", c.Log.Format)
	}
	if len(c.Roles) == 0 {
		bad("roles", "define at least one role")
	}
	names := make([]string, 0, len(c.Roles))
	for n := range c.Roles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		validateRole(name, c.Roles[name], bad)
	}
	return errors.Join(errs...)
}

func validateRole(name string, r *policies.Role, bad func(key, format string, args ...any)) {
	k := "roles." + name
	if !roleNameRe.MatchString(name) {
		bad(k, "role names are lowercase letters, digits, '-' and '_' (they appear in URLs)")
	}
	if r == nil {
		bad(k, "empty role")
		return
	}
	for _, d := range r.AllowedDomains {
		if why := hostnameSyntax(d); why != "" {
			bad(k+".allowed_domains", "%q: %s", d, why)
		}
	}
	for _, d := range r.AllowedEmailDomains {
		if why := hostnameSyntax(d); why != "" {
			bad(k+".allowed_email_domains", "%q: %s", d, why)
		}
	}
	for _, p := range r.AllowedIPRanges {
		switch {
		case p.Addr().Is4In6():
			bad(k+".allowed_ip_ranges", "%s is an IPv4-mapped range, which matches no SAN (they are refused); write the IPv4 range itself", p)
		case p != p.Masked():
			bad(k+".allowed_ip_ranges", "%s has host bits set; write %s", p, p.Masked())
		}
	}
	for _, p := range r.AllowedURIPatterns {
		if u, err := url.Parse(p); err != nil || u.Scheme == "" || u.Host == "" {
			bad(k+".allowed_uri_patterns", "%q is not scheme://host/path", p)
		}
	}
	if r.DefaultTTL < time.Second {
		bad(k+".default_ttl", "must be at least 1s (certificate times are whole seconds)")
	}
	if r.MaxTTL < r.DefaultTTL {
		bad(k+".max_ttl", "must be at least default_ttl (%s)", r.DefaultTTL)
	}
	if len(r.KeyTypes) == 0 {
		bad(k+".key_types", "name at least one of %s", strings.Join(policies.KnownKeyTypes, ", "))
	}
	for _, kt := range r.KeyTypes {
		if !slices.Contains(policies.KnownKeyTypes, kt) {
			bad(k+".key_types", "%q is not one of %s", kt, strings.Join(policies.KnownKeyTypes, ", "))
		}
	}
	if len(r.ExtKeyUsage) == 0 {
		bad(k+".ext_key_usage", "name at least one of %s", strings.Join(policies.KnownEKUs, ", "))
	}
	for _, e := range r.ExtKeyUsage {
		if !slices.Contains(policies.KnownEKUs, e) {
			bad(k+".ext_key_usage", "%q is not one of %s", e, strings.Join(policies.KnownEKUs, ", "))
		}
	}
	if r.Renewal.Enabled && r.Renewal.MaxAge <= 0 {
		bad(k+".renewal.max_age", "must be positive when renewal is enabled")
	}
	if l := r.RateLimit; l != nil && (l.Certificates < 1 || l.Per <= 0) {
		bad(k+".rate_limit", "want {certificates: N, per: DURATION} with N ≥ 1 and a positive duration, e.g. {certificates: 100, per: 1h}")
	}
	for _, ch := range r.ACME.Challenges {
		if !slices.Contains(policies.KnownChallenges, ch) {
			bad(k+".acme.challenges", "%q is not one of %s", ch, strings.Join(policies.KnownChallenges, ", "))
		}
	}
	if o := r.OIDC; o != nil {
		if u, err := url.Parse(o.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
			bad(k+".oidc.issuer", "want an https URL, got %q", o.Issuer)
		}
		if o.Audience == "" {
			bad(k+".oidc.audience", "required: the audience CI tokens are minted for")
		}
		if o.CAFile != "" {
			var err error
			if o.CAPEM, err = ReadRoots(o.CAFile); err != nil {
				bad(k+".oidc.ca_file", "%v", err)
			}
		}
		if len(o.Claims) == 0 {
			bad(k+".oidc.claims", "name at least one claim condition (e.g. repository), or any job of the issuer could issue")
		}
	}
	if r.ACME.Enabled && len(r.ACME.Challenges) == 0 {
		bad(k+".acme.challenges", "name at least one challenge when acme is enabled")
	}
}

// ReadRoots reads PEM roots for a TLS client (an OIDC role's ca_file):
// an error if the file cannot be read or no certificate in it parses,
// which would leave the client trusting nothing.
func ReadRoots(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(raw) {
		return nil, errors.New(path + " holds no PEM certificate")
	}
	return raw, nil
}

// hostnameSyntax says why n is not a hostname as pkid writes them (lower
// case, no trailing dot, LDH labels), or "" when it is.
func hostnameSyntax(n string) string {
	if n != policies.NormalizeDNS(n) || strings.Contains(n, "*") {
		return "write it in lower case, without '*' or a trailing dot"
	}
	return policies.DomainSyntax(n)
}

// hostPort reports whether v is host:port with a port of 1-65535.
func hostPort(v string) bool {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}
