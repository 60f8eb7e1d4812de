package config

import (
	"strings"
	"testing"
)

// TestKeyURI: ca.intermediate_key may name a key in a PKCS#11 token; the
// URI must say which module, token and key, and where the PIN is, and
// must not hold the PIN; a relative pin-source is relative to pkid.yaml.
func TestKeyURI(t *testing.T) {
	const mod = "module-path=/usr/lib/softhsm/libsofthsm2.so"
	with := func(uri string) string {
		return strings.Replace(base(), "intermediate_key: secrets/intermediate.key,", "intermediate_key: '"+uri+"',", 1)
	}
	ok := "pkcs11:" + mod + ";token=pkid;id=01;object=pkid-intermediate?pin-source=secrets/hsm-pin"
	c, err := Parse("/x/pkid.yaml", []byte(with(ok)))
	if err != nil || !IsKeyURI(c.CA.IntermediateKey) {
		t.Fatalf("ok/key URI: %v", err)
	}
	if got := c.IntermediateKeyPINFile(); got != "/x/secrets/hsm-pin" {
		t.Fatalf("ok/relative pin-source resolved to %q", got)
	}
	if abs := strings.Replace(ok, "secrets/hsm-pin", "/etc/pkid/pin", 1); c.ResolveKeyURI(abs) != abs {
		t.Fatalf("ok/an absolute pin-source is left alone: %q", c.ResolveKeyURI(abs))
	}
	if !strings.HasPrefix(c.IntermediateKeyURI(), "pkcs11:"+mod+";token=pkid;id=01;object=pkid-intermediate?pin-source=") {
		t.Fatalf("ok/the rest of the URI is kept: %q", c.IntermediateKeyURI())
	}
	for _, tc := range []struct{ name, uri, want string }{
		{"fail/PIN in the URI", "pkcs11:" + mod + ";token=pkid;object=k?pin-value=1234", "pin-value would keep the token's PIN in pkid.yaml"},
		{"fail/PIN in the path", "pkcs11:" + mod + ";token=pkid;object=k;pin-value=1234?pin-source=p", "pin-value would keep"},
		{"fail/PIN that does not parse", "pkcs11:" + mod + ";token=pkid;object=k?pin-value=12%z34", "pin-value would keep"},
		{"fail/no module", "pkcs11:token=pkid;object=k?pin-source=p", "names no module-path"},
		{"fail/no token", "pkcs11:" + mod + ";object=k?pin-source=p", "names no token, serial or slot-id"},
		{"fail/no key", "pkcs11:" + mod + ";token=pkid?pin-source=p", "names no key (object or id)"},
		{"fail/no PIN file", "pkcs11:" + mod + ";token=pkid;object=k", "names no pin-source"},
		{"fail/bad escape", "pkcs11:" + mod + ";token=%zz;object=k?pin-source=p", "not a PKCS#11 URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/x/pkid.yaml", []byte(with(tc.uri)))
			if err == nil || !strings.Contains(err.Error(), "ca.intermediate_key: "+tc.want) || strings.Contains(err.Error(), "1234") {
				t.Fatalf("got %v, want %q (and never the PIN)", err, tc.want)
			}
		})
	}
	if why := CheckKeyURI(`pkcs11:` + mod + `;token=a'b;object=k?pin-source=p`); !strings.Contains(why, "quote") {
		t.Fatalf("fail/a quote in the URI: %q", why)
	}
}
