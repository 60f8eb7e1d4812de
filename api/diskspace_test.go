package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"pkid/api"
	"pkid/internal/testutil"
)

func TestDiskWarning(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name          string
		free, minFree uint64
		want          []string // what the warning says; none for no warning
	}{
		{"ok/room", 2048 * mib, 1024 * mib, nil},
		{"ok/exactly the threshold", 1024 * mib, 1024 * mib, nil},
		{"fail/below", 300 * mib, 1024 * mib, []string{"has 300 MiB free", "about 241979 more certificates", "storage.min_free_mb (1024)", "storage.retention"}},
		{"fail/nothing left", 0, 1024 * mib, []string{"has 0 MiB free", "about 0 more"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := api.DiskWarning(tc.free, tc.minFree)
			if (w == "") != (tc.want == nil) {
				t.Fatalf("warning %q, want one naming %q", w, tc.want)
			}
			for _, s := range tc.want {
				if !strings.Contains(w, s) {
					t.Fatalf("warning %q does not say %q", w, s)
				}
			}
		})
	}
}

// TestLowDiskOnHealthz: a real server whose storage.min_free_mb is more
// than any disk holds warns on /healthz, from the free space it measured
// on the store's filesystem, and stays "ok": it still issues.
func TestLowDiskOnHealthz(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		return strings.Replace(y, "path: db/pkid.db}", "path: db/pkid.db, min_free_mb: 1099511627776}", 1)
	})
	s := startServer(t, dir, ports)
	defer s.stop()
	resp, err := s.client.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status   string
		Warnings []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "less than storage.min_free_mb (1099511627776)") || strings.Contains(h.Warnings[0], dir) {
		t.Fatalf("/healthz %+v", h)
	}
	var r api.IssueResponse
	if code := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "disk.internal"}, &r).StatusCode; code != 201 {
		t.Fatalf("issue with the warning: %d", code)
	}
}
