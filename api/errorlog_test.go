package api_test

import (
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/internal/testutil"
)

// TestHandshakeErrorLevels: a peer that connects and hangs up before the
// TLS handshake (a TCP health check) is logged at Debug; a client that
// refuses pkid's certificate is still a warning.
func TestHandshakeErrorLevels(t *testing.T) {
	var buf testutil.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewUnstartedServer(h)
	srv.Config = api.HTTPServer(h, log)
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")

	level := func(what string) string {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, line := range strings.Split(buf.String(), "\n") {
				var l struct{ Level, Msg string }
				if json.Unmarshal([]byte(line), &l) == nil && strings.Contains(l.Msg, "TLS handshake error") && strings.Contains(l.Msg, what) {
					return l.Level
				}
			}
		}
		t.Fatalf("no handshake error line with %q:\n%s", what, buf.String())
		return ""
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := level(": EOF"); got != "DEBUG" {
		t.Fatalf("a TCP probe logged at %s, want DEBUG", got)
	}
	if tc, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "pkid.test"}); err == nil {
		tc.Close()
		t.Fatal("a client that cannot know httptest's certificate accepted it")
	}
	if got := level("bad certificate"); got != "WARN" {
		t.Fatalf("a client refusing the certificate logged at %s, want WARN", got)
	}
}
