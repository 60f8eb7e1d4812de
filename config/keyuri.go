package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// IsKeyURI reports whether ca.intermediate_key is a PKCS#11 URI (RFC 7512:
// a key in an HSM or other token) rather than the path of a key file.
func IsKeyURI(s string) bool { return strings.HasPrefix(strings.ToLower(s), "pkcs11:") }

// CheckKeyURI says what is missing from or wrong with a key URI, or "":
// pkid must know the module to load, the token, the key, and where the
// PIN is, and the PIN itself must not be in the config.
func CheckKeyURI(raw string) string {
	if strings.Contains(raw, "pin-value") { // before parsing: its errors quote what they cannot parse
		return "pin-value would keep the token's PIN in pkid.yaml; write it to a file (mode 0600) and name that with pin-source"
	}
	path, query, _ := strings.Cut(raw[len("pkcs11:"):], "?")
	attrs, err := url.ParseQuery(strings.ReplaceAll(path, ";", "&"))
	if err != nil {
		return fmt.Sprintf("not a PKCS#11 URI: %v", err)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Sprintf("not a PKCS#11 URI: %v", err)
	}
	if strings.ContainsAny(raw, `'"`) {
		return "holds a quote character; name the module, token, key and PIN file without one"
	}
	example := "e.g. pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=pkid;id=01;object=pkid-intermediate?pin-source=/etc/pkid/hsm-pin"
	switch {
	case attrs.Get("module-path") == "":
		return "names no module-path (the PKCS#11 library to load); " + example
	case attrs.Get("token") == "" && attrs.Get("serial") == "" && attrs.Get("slot-id") == "":
		return "names no token, serial or slot-id; " + example
	case attrs.Get("object") == "" && attrs.Get("id") == "":
		return "names no key (object or id); " + example
	case q.Get("pin-source") == "":
		return "names no pin-source (the file holding the token's PIN); " + example
	}
	return ""
}

// IntermediateKeyURI is ca.intermediate_key, a key URI, with a relative
// pin-source made relative to the directory of pkid.yaml, as every other
// path in it is.
func (c *Config) IntermediateKeyURI() string { return c.ResolveKeyURI(c.CA.IntermediateKey) }

// ResolveKeyURI is the key URI raw with a relative pin-source made
// relative to the directory of pkid.yaml.
func (c *Config) ResolveKeyURI(raw string) string {
	path, query, ok := strings.Cut(raw, "?")
	if !ok {
		return raw
	}
	var parts []string
	for _, kv := range strings.Split(query, "&") {
		if v, ok := strings.CutPrefix(kv, "pin-source="); ok && v != "" && !filepath.IsAbs(v) && !strings.Contains(v, ":") {
			if dec, err := url.QueryUnescape(v); err == nil {
				kv = "pin-source=" + url.QueryEscape(c.Resolve(dec))
			}
		}
		parts = append(parts, kv)
	}
	return path + "?" + strings.Join(parts, "&")
}

// IntermediateKeyPINFile is the resolved pin-source of a key URI, or "".
func (c *Config) IntermediateKeyPINFile() string {
	_, query, _ := strings.Cut(c.IntermediateKeyURI(), "?")
	q, _ := url.ParseQuery(query)
	return q.Get("pin-source")
}
