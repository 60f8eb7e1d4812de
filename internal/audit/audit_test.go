package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"

	"pkid/store"
)

// TestAuditLine pins the audit line's fields and their order: operators
// grep and parse these lines, so the shape is part of the product.
func TestAuditLine(t *testing.T) {
	cases := []struct {
		name string
		log  func(l *slog.Logger, ctx context.Context)
		want string // the line without "time"
		keys []string
	}{
		{"ok/issued", func(l *slog.Logger, ctx context.Context) {
			Log(ctx, l, Entry{Event: "issue", Requester: "ci-main", Role: "default", Names: []string{"a.internal", "127.0.0.1"}, Outcome: "issued", Serial: "ab12"}, "via", "api")
		}, `{"level":"INFO","msg":"audit","event":"issue","requester":"ci-main","role":"default","names":["a.internal","127.0.0.1"],"outcome":"issued","request_id":"r-1","serial":"ab12","via":"api"}`,
			[]string{"time", "level", "msg", "event", "requester", "role", "names", "outcome", "request_id", "serial", "via"}},
		{"ok/refused carries the reason and no serial", func(l *slog.Logger, ctx context.Context) {
			Log(ctx, l, Entry{Event: "issue", Requester: "ci-main", Role: "default", Outcome: "refused", Reason: "name x.example is outside the role"})
		}, `{"level":"INFO","msg":"audit","event":"issue","requester":"ci-main","role":"default","names":null,"outcome":"refused","request_id":"r-1","reason":"name x.example is outside the role"}`,
			[]string{"time", "level", "msg", "event", "requester", "role", "names", "outcome", "request_id", "reason"}},
		{"ok/odd extra is dropped", func(l *slog.Logger, ctx context.Context) {
			Log(ctx, l, Entry{Event: "revoke", Requester: "admin", Role: "default", Names: []string{}, Outcome: "revoked", Serial: "ff", Reason: "keyCompromise"}, "dangling")
		}, `{"level":"INFO","msg":"audit","event":"revoke","requester":"admin","role":"default","names":[],"outcome":"revoked","request_id":"r-1","serial":"ff","reason":"keyCompromise"}`,
			[]string{"time", "level", "msg", "event", "requester", "role", "names", "outcome", "request_id", "serial", "reason"}},
		{"ok/an empty extra is left off", func(l *slog.Logger, ctx context.Context) {
			Log(ctx, l, Entry{Event: "issue", Requester: "oidc:repo", Role: "ci", Names: []string{"a.internal"}, Outcome: "issued", Serial: "ab"}, "via", "api", "token_id", "")
		}, `{"level":"INFO","msg":"audit","event":"issue","requester":"oidc:repo","role":"ci","names":["a.internal"],"outcome":"issued","request_id":"r-1","serial":"ab","via":"api"}`,
			[]string{"time", "level", "msg", "event", "requester", "role", "names", "outcome", "request_id", "serial", "via"}},
		{"ok/a certificate revoked with another of its key", func(l *slog.Logger, ctx context.Context) {
			SameKey(ctx, l, "token:admin", "aa", []*store.CertRecord{{Serial: "bb", Role: "svc", Names: []string{"b.internal"}, Reason: "keyCompromise"}}, "token_id", "t1")
		}, `{"level":"INFO","msg":"audit","event":"revoke","requester":"token:admin","role":"svc","names":["b.internal"],"outcome":"revoked","request_id":"r-1","serial":"bb","reason":"keyCompromise","same_key_as":"aa","token_id":"t1"}`,
			[]string{"time", "level", "msg", "event", "requester", "role", "names", "outcome", "request_id", "serial", "reason", "same_key_as", "token_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			ctx := WithRequestID(context.Background(), "r-1")
			tc.log(l, ctx)
			if got := bytes.TrimSpace(buf.Bytes()); string(got) != tc.want {
				t.Fatalf("audit line\n got %s\nwant %s", got, tc.want)
			}
			// With the default handler the time comes first.
			buf.Reset()
			l = slog.New(slog.NewJSONHandler(&buf, nil))
			tc.log(l, ctx)
			if keys := jsonKeys(t, buf.Bytes()); !reflect.DeepEqual(keys, tc.keys) {
				t.Fatalf("keys %v, want %v", keys, tc.keys)
			}
		})
	}
}

// jsonKeys lists an object's top-level keys in the order they appear.
func jsonKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
