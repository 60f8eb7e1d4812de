package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/store"
	"pkid/store/storetest"
)

// TestAdminBackupTrailer: the admin socket's backup ends with a trailer
// that says "ok <bytes>" for a whole copy (which then passes
// store.CheckBackup), and "failed: ..." when the copy stopped (here its
// request's context had ended): the only way a client can tell a copy cut
// short from a whole one once the body has begun.
func TestAdminBackupTrailer(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "pkid.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.Insert(t, st, "default", 50)
	h := api.New(api.Options{Store: st}).AdminHandler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/backup", nil))
	res := rec.Result()
	if got, want := res.Trailer.Get(api.BackupTrailer), fmt.Sprintf("ok %d", rec.Body.Len()); res.StatusCode != 200 || got != want {
		t.Fatalf("ok/whole copy: HTTP %d, trailer %q, want %q", res.StatusCode, got, want)
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, rec.Body.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := store.CheckBackup(copyPath); err != nil || n != 50 {
		t.Fatalf("ok/the copy checks: %d records, %v", n, err)
	}

	// A copy that takes longer than the listener's write timeout (as a
	// large store's does over the real socket, whose timeout is 60 s):
	// the handler lifts the deadline, so the whole copy arrives.
	// Megabytes more than loopback's socket buffers hold.
	if err := storetest.InsertConcurrently(context.Background(), st, "default", 8, 1000); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.WriteTimeout = 100 * time.Millisecond
	ts.Start()
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/backup")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a reader slower than the timeout
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.Trailer.Get(api.BackupTrailer), fmt.Sprintf("ok %d", len(body)); err != nil || got != want {
		t.Fatalf("ok/copy longer than the write timeout: %d bytes (%v), trailer %q, want %q", len(body), err, got, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/backup", nil).WithContext(ctx))
	if got := rec.Result().Trailer.Get(api.BackupTrailer); !strings.HasPrefix(got, "failed: ") {
		t.Fatalf("fail/copy stopped: trailer %q", got)
	}
}

// TestRevokeACMEAccount: the operator ends a valid account (status
// revoked, which the ACME server refuses every request of); ending it
// again, or one the client deactivated, is a conflict that says so, and
// an unknown ID is not found.
func TestRevokeACMEAccount(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "pkid.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for id, status := range map[string]string{"live": store.ACMEValid, "gone": store.ACMEDeactivated} {
		if err := st.CreateAccount(ctx, &store.ACMEAccount{ID: id, Role: "default", KeyThumbprint: "tp-" + id, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	if acct, err := api.RevokeACMEAccount(ctx, st, "live"); err != nil || acct.Status != store.ACMERevoked {
		t.Fatalf("ok/revoke: %+v %v", acct, err)
	}
	if got, _ := st.GetAccount(ctx, "live"); got.Status != store.ACMERevoked {
		t.Fatalf("ok/stored: %+v", got)
	}
	for id, want := range map[string]string{"live": "already revoked", "gone": "already deactivated", "nosuch": "no ACME account nosuch"} {
		if _, err := api.RevokeACMEAccount(ctx, st, id); err == nil || !strings.Contains(errs.DetailOf(err), want) {
			t.Fatalf("fail/%s: %v, want %q", id, err, want)
		}
	}
}

// TestAdminReapplyCRL: the admin socket's POST /reapply-crl takes a CRL's
// DER. This CA's current CRL, whose revocations (one made here at least)
// the store holds, changes nothing and says so; a body that is not a CRL
// is 400, another CA's CRL 403, and a body over the socket's limit 413,
// unread.
func TestAdminReapplyCRL(t *testing.T) {
	s := shared
	ctx := context.Background()
	h := api.New(api.Options{CA: s.run.CA, Store: s.run.Store, Clock: s.clock}).AdminHandler()
	// A revocation of its own, so this CA's CRL lists at least one.
	var issued api.IssueResponse
	if resp := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "reapply.internal", "ttl": "1h"}, &issued); resp.StatusCode != 201 {
		t.Fatalf("issue: %d", resp.StatusCode)
	}
	if _, _, err := s.run.CA.Revoke(ctx, issued.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	cur, err := s.run.CRL.Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	other := testutil.CA(t, "ec-p384")
	otherCRL, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: s.clock.Now(), NextUpdate: s.clock.Now().Add(time.Hour)}, other.Intermediate, other.Signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		length int64
		status int
		want   string
	}{
		{"ok/this CA's CRL", cur.DER, 0, http.StatusOK, `"number":"` + cur.Number + `"`},
		{"fail/not a CRL", []byte("not a CRL"), 0, http.StatusBadRequest, "not a CRL"},
		{"fail/another CA's CRL", otherCRL, 0, http.StatusForbidden, "not by this CA's intermediate"},
		{"fail/over the limit", []byte("x"), api.MaxAdminBody + 1, http.StatusRequestEntityTooLarge, "larger than the limit"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/reapply-crl", bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/pkix-crl")
		if tc.length > 0 {
			req.ContentLength = tc.length
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Fatalf("%s: HTTP %d, want %d with %q: %s", tc.name, rec.Code, tc.status, tc.want, rec.Body)
		}
		if rec.Code == http.StatusOK {
			var v api.ReappliedView
			decode(t, rec.Body.Bytes(), &v)
			if v.Entries == 0 || v.Already != v.Entries || len(v.Revoked)+len(v.Unrecorded) != 0 || v.Issuer != s.run.CA.IssuerID() {
				t.Fatalf("%s: %+v", tc.name, v)
			}
		}
	}
}
