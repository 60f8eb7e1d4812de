package acme

import (
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"pkid/store"
)

// TestParseCertID checks RFC 9773 §4.1 identifiers against encoding/asn1,
// which writes the serial's DER content the way clients do.
func TestParseCertID(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	derOf := func(n *big.Int) string {
		der, _ := asn1.Marshal(n)
		return b64(der[2:])
	}
	aki := b64([]byte{0xab, 0xcd, 0x01})
	max20 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
	for _, tc := range []struct {
		name, in, serial, why string
	}{
		{"ok/high bit: leading zero kept", aki + "." + derOf(big.NewInt(0x80)), "80", ""},
		{"ok/small", aki + "." + derOf(big.NewInt(0x7f)), "7f", ""},
		{"ok/20 octets with its zero", aki + "." + derOf(max20), max20.Text(16), ""},
		{"fail/no dot", aki + derOf(big.NewInt(1)), "", "base64url(authority key identifier)"},
		{"fail/two dots", aki + "." + derOf(big.NewInt(1)) + ".x", "", "base64url(authority key identifier)"},
		{"fail/padded", b64([]byte{1}) + "==." + derOf(big.NewInt(1)), "", "not unpadded base64url"},
		{"fail/standard base64", "+/+/." + derOf(big.NewInt(1)), "", "not unpadded base64url"},
		{"fail/empty aki", "." + derOf(big.NewInt(1)), "", "not unpadded base64url"},
		{"fail/empty serial", aki + ".", "", "not unpadded base64url"},
		{"fail/negative", aki + "." + b64([]byte{0x80}), "", "negative"},
		{"fail/leading zero", aki + "." + b64([]byte{0, 0x7f}), "", "leading zero"},
		{"fail/21 octets", aki + "." + derOf(new(big.Int).Lsh(big.NewInt(1), 160)), "", "longer than 20 octets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := parseCertID(tc.in)
			if tc.why != "" {
				if err == nil || !strings.Contains(err.Error(), tc.why) {
					t.Fatalf("parse %q: %v, want an error saying %q", tc.in, err, tc.why)
				}
				return
			}
			if err != nil || id.serial != tc.serial || id.issuer != "abcd01" {
				t.Fatalf("parse %q: %+v %v", tc.in, id, err)
			}
			if back := formatCertID(&store.CertRecord{Issuer: id.issuer, Serial: id.serial}); back != tc.in {
				t.Fatalf("format %+v: %q, want %q", id, back, tc.in)
			}
		})
	}
}

func TestRenewalWindow(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	nb := now.Add(-time.Minute)
	for _, tc := range []struct {
		name       string
		rec        store.CertRecord
		start, end time.Time
		retry      time.Duration
	}{
		{"ok/24h: ends at two thirds, opens a tenth earlier",
			store.CertRecord{NotBefore: nb, NotAfter: nb.Add(24 * time.Hour), Status: store.StatusValid},
			nb.Add(16*time.Hour - 144*time.Minute), nb.Add(16 * time.Hour), time.Hour},
		{"ok/90 days: asks again in six hours",
			store.CertRecord{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour), Status: store.StatusValid},
			nb.Add(51 * 24 * time.Hour), nb.Add(60 * 24 * time.Hour), 6 * time.Hour},
		{"ok/10 minutes: asks again in a minute",
			store.CertRecord{NotBefore: nb, NotAfter: nb.Add(10 * time.Minute), Status: store.StatusValid},
			nb.Add(400*time.Second - time.Minute), nb.Add(400 * time.Second), time.Minute},
		{"ok/revoked: the window is past",
			store.CertRecord{NotBefore: nb, NotAfter: nb.Add(24 * time.Hour), Status: store.StatusRevoked},
			now.Add(-time.Hour), now.Add(-30 * time.Minute), time.Hour},
		{"ok/signed on a clock an hour ahead, since stepped back: the window is past",
			store.CertRecord{NotBefore: nb.Add(time.Hour), NotAfter: nb.Add(25 * time.Hour), Status: store.StatusValid},
			now.Add(-time.Hour), now.Add(-30 * time.Minute), time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end, retry := renewalWindow(&tc.rec, now)
			if !start.Equal(tc.start) || !end.Equal(tc.end) || retry != tc.retry || !end.After(start) {
				t.Fatalf("window %s – %s, retry %s; want %s – %s, %s", start, end, retry, tc.start, tc.end, tc.retry)
			}
		})
	}
}

// FuzzCertID: any string parses or is refused with a reason; whatever
// parses formats back to itself, so one certificate has one identifier.
func FuzzCertID(f *testing.F) {
	f.Add("q80B.AIA")
	f.Add("q80B.fw")
	f.Add("q80B.AH8")
	f.Add("..")
	f.Add("q80B.gA")
	f.Fuzz(func(t *testing.T, in string) {
		id, err := parseCertID(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty reason")
			}
			return
		}
		if back := formatCertID(&store.CertRecord{Issuer: id.issuer, Serial: id.serial}); back != in {
			t.Fatalf("%q parsed to %+v, which formats as %q", in, id, back)
		}
	})
}

// formatCertID is parseCertID's inverse, for a stored record: what a
// client computes from the certificate (lego's MakeARICertID).
func formatCertID(rec *store.CertRecord) string {
	aki, _ := hex.DecodeString(rec.Issuer)
	n, _ := new(big.Int).SetString(rec.Serial, 16)
	der := n.Bytes()
	if len(der) == 0 || der[0]&0x80 != 0 {
		der = append([]byte{0}, der...)
	}
	return base64.RawURLEncoding.EncodeToString(aki) + "." + base64.RawURLEncoding.EncodeToString(der)
}
