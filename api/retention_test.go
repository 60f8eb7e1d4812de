package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/internal/testutil"
)

// TestRetention: with storage.retention set, serve deletes, on its timer,
// the records of certificates that expired longer ago than that: moving
// the injected clock past one certificate's expiry plus a week makes
// GET /v1/certs/{serial} 404 over HTTPS, while a certificate that expired
// more recently is kept.
func TestRetention(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		return strings.Replace(y, "storage: {driver: bbolt, path: db/pkid.db}", "storage: {driver: bbolt, path: db/pkid.db, retention: 168h}", 1)
	})
	s := startServer(t, dir, ports)
	defer s.stop()
	issue := func(cn string) string {
		var r api.IssueResponse
		if resp := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]string{"common_name": cn, "ttl": "1h"}, &r); resp.StatusCode != 201 {
			t.Fatalf("issue %s: %d", cn, resp.StatusCode)
		}
		return r.Serial
	}
	status := func(serial string) int {
		resp, err := s.client.Get(s.base + "/v1/certs/" + serial)
		if err != nil {
			return -1 // the server's own certificate is being replaced on the moved clock
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	old := issue("old.internal")
	s.clock.Advance(3 * 24 * time.Hour)
	recent := issue("recent.internal")
	// old expired 1 h after issue; a week and a minute after that it is due.
	s.clock.Advance(4*24*time.Hour + time.Hour + time.Minute)
	for deadline := time.Now().Add(testutil.DutyWait); status(old) != http.StatusNotFound; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the record of %s, expired more than storage.retention ago, is still served (%d)", old, status(old))
		}
	}
	if got := status(recent); got != http.StatusOK {
		t.Fatalf("the record that expired 4 days ago: %d, want 200", got)
	}
}
