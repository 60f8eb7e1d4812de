package api

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"pkid/internal/audit"
)

// TestOfflineAudit: what an offline admin command writes to the offline
// audit log (0600) reaches serve's log at its next start as audit lines
// of its own, fields in order and the time each was made as
// "offline_at"; a line cut short, or one that is not an audit line, is a
// warning with its text; the file is then empty, so a second start logs
// nothing again.
func TestOfflineAudit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, serial := range []string{"aa01", "aa02"} {
		oa, err := OpenOfflineAudit(dir)
		if err != nil {
			t.Fatal(err)
		}
		audit.Log(ctx, oa.Log, audit.Entry{Event: "revoke", Requester: OfflineRequester, Role: "default", Names: []string{"a.internal"}, Outcome: "revoked", Serial: serial, Reason: "superseded"})
		if err := oa.Close(); err != nil {
			t.Fatal(err)
		}
	}
	path := OfflineAuditPath(dir)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("offline audit file: %v %v", fi, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"time\":\"2026-11-28T12:00:00Z\",\"level\":\"INFO\",\"msg\":\"something else\"}\n{\"time\":\"2026-1\n")
	f.Close()

	var log bytes.Buffer
	ReplayOfflineAudit(dir, slog.New(slog.NewJSONHandler(&log, nil)))
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 2 audit lines and 2 warnings:\n%s", log.String())
	}
	for i, serial := range []string{"aa01", "aa02"} {
		want := `"msg":"audit","offline_at":"` // serve's own time and level first
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"event":"revoke","requester":"store","role":"default","names":["a.internal"],"outcome":"revoked","request_id":"","serial":"`+serial+`","reason":"superseded"}`) {
			t.Fatalf("ok/line %d: %s", i, lines[i])
		}
	}
	if !strings.Contains(lines[2], "line not parsed") || !strings.Contains(lines[3], "line not parsed") {
		t.Fatalf("fail/lines not audit lines: %s\n%s", lines[2], lines[3])
	}
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Fatalf("ok/emptied after logging: %q %v", b, err)
	}
	log.Reset()
	ReplayOfflineAudit(dir, slog.New(slog.NewJSONHandler(&log, nil)))
	if log.Len() != 0 {
		t.Fatalf("ok/nothing logged twice: %s", log.String())
	}
}

// TestOfflineAuditTornTail: an offline command's audit line written after
// one a crash or a full disk cut short starts a line of its own, so serve
// logs it at its next start; the line cut short is a warning.
func TestOfflineAuditTornTail(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(OfflineAuditPath(dir), []byte(`{"time":"2026-11-28T12:00:00Z","level":"INFO","msg":"audit","ev`), 0o600); err != nil {
		t.Fatal(err)
	}
	oa, err := OpenOfflineAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	audit.Log(context.Background(), oa.Log, audit.Entry{Event: "revoke", Requester: OfflineRequester, Role: "default", Outcome: "revoked", Serial: "aa03", Reason: "superseded"})
	if err := oa.Close(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ReplayOfflineAudit(dir, slog.New(slog.NewJSONHandler(&log, nil)))
	if !strings.Contains(log.String(), `"serial":"aa03"`) || !strings.Contains(log.String(), "line not parsed") {
		t.Fatalf("want the revocation logged and the line cut short warned about:\n%s", log.String())
	}
}
