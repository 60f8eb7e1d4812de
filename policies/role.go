package policies

import (
	"net/netip"
	"time"
)

// Role is what one class of requester may obtain. The zero value allows
// nothing: every list is empty, so a role never allows more than it names.
type Role struct {
	Name               string         `yaml:"-"`
	AllowedDomains     []string       `yaml:"allowed_domains,flow"`
	AllowSubdomains    bool           `yaml:"allow_subdomains"`
	AllowBareDomains   bool           `yaml:"allow_bare_domains"`
	AllowWildcards     bool           `yaml:"allow_wildcards"`
	AllowedIPRanges    []netip.Prefix `yaml:"allowed_ip_ranges,flow"`
	AllowedURIPatterns []string       `yaml:"allowed_uri_patterns,flow"`
	// AllowedEmailDomains lists the domains whose mailboxes may appear as
	// email SANs; empty means no email SANs at all.
	AllowedEmailDomains []string      `yaml:"allowed_email_domains,flow,omitempty"`
	DefaultTTL          time.Duration `yaml:"default_ttl"`
	MaxTTL              time.Duration `yaml:"max_ttl"`
	KeyTypes            []string      `yaml:"key_types,flow"`
	ExtKeyUsage         []string      `yaml:"ext_key_usage,flow"`
	Renewal             Renewal       `yaml:"renewal,flow"`
	// RevocationPointers is a pointer so that an absent key means true: leaves
	// carry CRL DP/OCSP/AIA unless the role opts out for passive revocation.
	RevocationPointers *bool `yaml:"revocation_pointers"`
	ACME               ACME  `yaml:"acme,flow"`
	// RateLimit, if set, bounds the certificates one credential obtains
	// under this role: a runaway CI loop or ACME client is refused (429)
	// rather than filling the store.
	RateLimit *RateLimit `yaml:"rate_limit,flow,omitempty"`
	// OIDC, if set, accepts CI OIDC tokens for this role.
	OIDC *OIDCTrust `yaml:"oidc,omitempty"`
	// Template optionally names an x509util JSON template file (relative to
	// the config) used instead of the built-in leaf layout.
	Template string `yaml:"template,omitempty"`
}

// Renewal bounds mTLS renewal: a chain of renewals may run at most MaxAge
// after the last real authorization.
type Renewal struct {
	Enabled bool          `yaml:"enabled"`
	MaxAge  time.Duration `yaml:"max_age"`
}

// RateLimit allows Certificates per Per to one credential (an API token's
// name, an OIDC identity, an ACME account, the names a chain of renewals
// keeps): all of them at once, then one every Per/Certificates.
type RateLimit struct {
	Certificates int           `yaml:"certificates"`
	Per          time.Duration `yaml:"per"`
}

// ACME configures the role's ACME directory at /acme/{role}/.
type ACME struct {
	Enabled    bool     `yaml:"enabled"`
	Challenges []string `yaml:"challenges,flow"`
	RequireEAB bool     `yaml:"require_eab"`
}

// Pointers reports whether leaves of this role carry revocation pointers.
func (r *Role) Pointers() bool { return r.RevocationPointers == nil || *r.RevocationPointers }

// KnownKeyTypes are the key types pkid knows, in the spelling config and CLI use: a role's key_types may name only these.
var KnownKeyTypes = []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"}

// KnownEKUs maps config spellings to what they mean; codeSigning and
// timeStamping are deliberately absent: an internal TLS CA has no business
// issuing them.
var KnownEKUs = []string{"server_auth", "client_auth", "email_protection"}

// KnownChallenges are the ACME challenge types a role may offer.
var KnownChallenges = []string{"http-01", "dns-01", "tls-alpn-01"}

// OIDCTrust lets CI jobs authenticate with the OIDC token their CI system
// mints (GitHub Actions, GitLab CI) instead of an API token.
type OIDCTrust struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Claims must all match; a value may be a path.Match glob such as
	// "refs/heads/*".
	Claims map[string]string `yaml:"claims"`
	// CAFile optionally names PEM roots for the issuer's TLS (an internal
	// issuer); empty means the system roots.
	CAFile string `yaml:"ca_file,omitempty"`
	// CAPEM is CAFile's content, read when the config loads: a reload
	// after the file was replaced (the issuer's CA renewed) trusts the new
	// roots, and serve reads no file while it answers a token.
	CAPEM []byte `yaml:"-"`
}
