package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"pkid/ca"
	"pkid/store"
)

// TestIssueAnswerWire: the answer written with the chain encoded once is
// byte for byte what encoding IssueResponse writes, and a different chain
// (another intermediate) is encoded afresh rather than served stale.
func TestIssueAnswerWire(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	issued := func(chain ...string) *ca.Issued {
		c := make([][]byte, len(chain))
		for i, s := range chain {
			c[i] = []byte(s)
		}
		return &ca.Issued{Record: &store.CertRecord{Serial: "1c0ffee", NotBefore: at, NotAfter: at.Add(time.Hour)},
			PEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), Chain: c}
	}
	var s Server
	for _, tc := range []struct {
		iss *ca.Issued
		key []byte
	}{
		{issued("-----BEGIN CERTIFICATE-----\ninter\n-----END CERTIFICATE-----\n", "root <&> \"quoted\"\n"), nil},
		{issued("-----BEGIN CERTIFICATE-----\ninter\n-----END CERTIFICATE-----\n", "root <&> \"quoted\"\n"), []byte("-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n")},
		{issued("another intermediate\n", "root\n"), nil},
		{issued(), nil},
	} {
		want := IssueResponse{Serial: tc.iss.Record.Serial, Certificate: string(tc.iss.PEM), NotBefore: tc.iss.Record.NotBefore, NotAfter: tc.iss.Record.NotAfter, PrivateKey: string(tc.key)}
		for _, c := range tc.iss.Chain {
			want.Chain = append(want.Chain, string(c))
		}
		w, _ := json.Marshal(want)
		got, err := json.Marshal(s.issueResponse(tc.iss, tc.key))
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("answer\n got %s %v\nwant %s", got, err, w)
		}
	}
}
