package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/api"
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
