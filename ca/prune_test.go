package ca_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestPruneInBatches: the deletions are logged with their count and the
// caller's attributes; a failure is logged as one to retry, unless the
// context has ended (the server stopping), which is no failure.
func TestPruneInBatches(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name    string
		ctx     context.Context
		err     error
		want    []string
		notWant []string
	}{
		{"ok/deleted", context.Background(), nil, []string{`msg="pruned old things" kind=test count=7`}, []string{"retry"}},
		{"fail/store error", context.Background(), errors.New("disk gone"), []string{"prune old things; will retry", "kind=test", "disk gone", "count=7"}, nil},
		{"ok/server stopping", cancelled, context.Canceled, []string{"count=7"}, []string{"retry"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf testutil.SyncBuffer
			calls := 0
			ca.PruneInBatches(c.ctx, slog.New(slog.NewTextHandler(&buf, nil)), "old things", 5, func(max int) (int, error) {
				calls++
				if calls == 1 {
					return max, nil
				}
				return 2, c.err
			}, "kind", "test")
			for _, w := range c.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, buf.String())
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(buf.String(), w) {
					t.Errorf("log has %q:\n%s", w, buf.String())
				}
			}
		})
	}
}
