package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/store"
)

// TestWithdrawnJournal: withdrawals are journaled beside the store (0600,
// one line each); replayed against a store that holds them live again (as
// one restored from a backup does), each token, EAB key and ACME account
// is withdrawn again (an account that deactivated itself is deactivated,
// one that rolled its key over goes to its last key), with an audit line and a warning, and a second
// replay finds nothing to do. A line that does not parse, a kind not
// known and a credential gone are skipped; no directory, no journal.
func TestWithdrawnJournal(t *testing.T) {
	ctx := context.Background()
	st, dir := storeInTemp(t)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	if err := st.PutToken(ctx, &store.Token{ID: "tok1", Name: "leaked", Roles: []string{"default"}, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutToken(ctx, &store.Token{ID: "tok2", Name: "kept", Roles: []string{"default"}, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutEABKey(ctx, &store.EABKey{KID: "kid1", Role: "default", Sealed: []byte("x"), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(ctx, &store.ACMEAccount{ID: "acct1", Role: "default", KeyThumbprint: "tp1", JWK: []byte(`{}`), Status: store.ACMEValid, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(ctx, &store.ACMEAccount{ID: "acct2", Role: "default", KeyThumbprint: "tp2", JWK: []byte(`{}`), Status: store.ACMEValid, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(ctx, &store.ACMEAccount{ID: "acct3", Role: "default", KeyThumbprint: "k0", JWK: []byte(`{"k":0}`), Status: store.ACMEValid, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []Withdrawal{{Kind: WithdrawnToken, ID: "tok1"}, {Kind: WithdrawnEAB, ID: "kid1"}, {Kind: WithdrawnAccount, ID: "acct1"},
		{Kind: WithdrawnAccount, ID: "acct2", Status: store.ACMEDeactivated}, {Kind: WithdrawnToken, ID: "gone"},
		// Two rollovers, replayed in order: k0 → k1 → k2.
		{Kind: WithdrawnAccountKey, ID: "acct3", Key: "k0", Successor: []byte(`{"k":1}`), SuccessorKey: "k1"},
		{Kind: WithdrawnAccountKey, ID: "acct3", Key: "k1", Successor: []byte(`{"k":2}`), SuccessorKey: "k2"}} {
		w.At = at
		if err := NoteWithdrawn(dir, w); err != nil {
			t.Fatal(err)
		}
	}
	path := WithdrawnPath(dir)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal: %v %v", fi, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"kind\":\"token\",\"id\":\"tok2\"\n{\"kind\":\"printer\",\"id\":\"p1\"}\n") // cut by a crash; a kind not known
	f.Close()

	var log bytes.Buffer
	w := ReplayWithdrawn(ctx, dir, st, slog.New(slog.NewJSONHandler(&log, nil)))
	if len(w) != 6 || !strings.Contains(w[0], "token tok1, withdrawn at 2026-11-28T12:00:00Z, was live in the store again") || !strings.Contains(w[5], "acme-account-key acct3 (key k1)") {
		t.Fatalf("ok/replayed: %q", w)
	}
	if _, err := st.GetToken(ctx, "tok1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/token withdrawn again: %v", err)
	}
	if _, err := st.GetToken(ctx, "tok2"); err != nil {
		t.Fatalf("ok/a token on a line cut short stays: %v", err)
	}
	if _, err := st.GetEABKey(ctx, "kid1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/EAB key withdrawn again: %v", err)
	}
	if a, err := st.GetAccount(ctx, "acct1"); err != nil || a.Status != store.ACMERevoked {
		t.Fatalf("ok/account withdrawn again: %+v %v", a, err)
	}
	if a, err := st.GetAccount(ctx, "acct2"); err != nil || a.Status != store.ACMEDeactivated {
		t.Fatalf("ok/account that deactivated itself, deactivated again: %+v %v", a, err)
	}
	if a, err := st.GetAccount(ctx, "acct3"); err != nil || a.KeyThumbprint != "k2" || string(a.JWK) != `{"k":2}` {
		t.Fatalf("ok/account rolled over to its last key again: %+v %v", a, err)
	}
	if _, err := st.GetAccountByKey(ctx, "default", "k0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/the withdrawn key finds no account: %v", err)
	}
	for _, want := range []string{`"event":"token.revoke","requester":"journal","role":"","names":null,"outcome":"revoked","request_id":"","token_id":"tok1"`, `"event":"acme.eab.revoke"`, `"account":"acct1"`, `"event":"acme.account.deactivate","requester":"journal"`, "line skipped", `unknown kind \"printer\"`} {
		if !strings.Contains(log.String(), want) {
			t.Fatalf("log lacks %s:\n%s", want, log.String())
		}
	}
	if w := ReplayWithdrawn(ctx, dir, st, slog.New(slog.DiscardHandler)); len(w) != 0 {
		t.Fatalf("ok/a second replay does nothing: %q", w)
	}
	if err := NoteWithdrawn("", Withdrawal{Kind: WithdrawnToken, ID: "x", At: at}); err != nil {
		t.Fatalf("ok/no directory: %v", err)
	}
	if w := ReplayWithdrawn(ctx, t.TempDir(), st, slog.New(slog.DiscardHandler)); len(w) != 0 {
		t.Fatalf("ok/no journal: %q", w)
	}

	// Withdrew, as the admin API, socket and offline commands record a
	// withdrawal: journaled, and an audit line naming who and the role.
	log.Reset()
	other := t.TempDir()
	if err := Withdrew(ctx, slog.New(slog.NewJSONHandler(&log, nil)), other, adminSocket, "default", Withdrawal{Kind: WithdrawnAccount, ID: "acct9", At: at}); err != nil {
		t.Fatal(err)
	}
	if j, err := os.ReadFile(WithdrawnPath(other)); err != nil || !strings.Contains(string(j), `{"kind":"acme-account","id":"acct9","at":"2026-11-28T12:00:00Z"}`) {
		t.Fatalf("ok/Withdrew journals: %q %v", j, err)
	}
	if !strings.Contains(log.String(), `"msg":"audit","event":"acme.account.revoke","requester":"admin-socket","role":"default","names":null,"outcome":"revoked","request_id":"","account":"acct9"}`) {
		t.Fatalf("ok/Withdrew audits: %s", log.String())
	}
}

// TestWithdrawnJournalOwner: a journal an admin command makes as root
// beside a store that serve's own user owns is given that user, so serve
// can go on reading and appending to it.
func TestWithdrawnJournalOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file for another user")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	if err := NoteWithdrawn(dir, Withdrawal{Kind: WithdrawnToken, ID: "t1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(WithdrawnPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4321 || st.Gid != 4321 {
		t.Fatalf("journal owned by %d:%d, want the store directory's 4321:4321", st.Uid, st.Gid)
	}
}

// TestWithdrawnJournalTornTail: a journal whose last line a crash or a
// full disk cut short, and which holds a run of junk longer than any
// withdrawal (the zeros a crash can leave), still gives back every
// withdrawal written after them: the next withdrawal starts a line of
// its own, and lines of any length are read past.
func TestWithdrawnJournalTornTail(t *testing.T) {
	ctx := context.Background()
	st, dir := storeInTemp(t)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	torn := []byte(`{"kind":"token","id":"tok`)
	if err := os.WriteFile(WithdrawnPath(dir), append(append(bytes.Repeat([]byte{0}, 100<<10), '\n'), torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"tokA", "tokB"} {
		if err := st.PutToken(ctx, &store.Token{ID: id, Name: id, Roles: []string{"default"}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		if err := NoteWithdrawn(dir, Withdrawal{Kind: WithdrawnToken, ID: id, At: at}); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		if w := ReplayWithdrawn(ctx, dir, st, slog.New(slog.NewJSONHandler(&log, nil))); len(w) != 1 || !strings.Contains(w[0], "token "+id+", withdrawn") {
			t.Fatalf("ok/%s after a line cut short: %q\n%s", id, w, log.String())
		}
		if n := strings.Count(log.String(), "line skipped"); n != 2+i {
			t.Fatalf("%d lines skipped, want the junk and %d lines cut short:\n%s", n, 1+i, log.String())
		}
		// The next withdrawal comes after another line cut short.
		f, err := os.OpenFile(WithdrawnPath(dir), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(torn)
		f.Close()
	}
}

// storeInTemp opens a store in a new directory, which holds its journal;
// it closes when the test ends.
func storeInTemp(t *testing.T) (*store.Bolt, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "pkid.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}
