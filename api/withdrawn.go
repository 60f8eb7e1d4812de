package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"pkid/internal/audit"
	"pkid/store"
)

// The kinds of credential the withdrawal journal records. An ACME
// account's key is withdrawn by a key rollover (RFC 8555 §7.3.5): a
// restored store would give the account back to the old key.
const (
	WithdrawnToken      = "token"
	WithdrawnEAB        = "eab"
	WithdrawnAccount    = "acme-account"
	WithdrawnAccountKey = "acme-account-key"
)

// WithdrawnPath is the journal of the credentials withdrawn on this host
// (tokens, EAB keys, ACME accounts), beside the store but outside it. A
// store restored from a backup holds those withdrawn since its copy was
// made as live again, and no CA signature records their withdrawal as a
// CRL does a revocation: serve withdraws them again at start
// (ReplayWithdrawn). A withdrawal is final and IDs are random, never
// reused, so replaying the whole journal is always right.
func WithdrawnPath(storeDir string) string { return filepath.Join(storeDir, "withdrawn.jsonl") }

// Withdrawal is one line of the journal: a credential of Kind withdrawn
// at At. Status is an ACME account's status after it ("" for revoked; an
// account may also have deactivated itself).
type Withdrawal struct {
	Kind   string    `json:"kind"`
	ID     string    `json:"id"`
	Status string    `json:"status,omitempty"`
	At     time.Time `json:"at"`
	// For WithdrawnAccountKey: the thumbprint of the key withdrawn, and
	// the key (a JWK) and thumbprint that took its place.
	Key          string          `json:"key,omitempty"`
	Successor    json.RawMessage `json:"successor,omitempty"`
	SuccessorKey string          `json:"successor_key,omitempty"`
}

// NoteWithdrawn appends w, already committed to the store, to the journal
// in storeDir ("" for none), flushed to disk before it returns. An error
// is the caller's to log as a warning: the withdrawal stands, only a
// restore would not repeat it.
func NoteWithdrawn(storeDir string, w Withdrawal) error {
	if storeDir == "" {
		return nil
	}
	w.At = w.At.UTC()
	line, err := json.Marshal(w)
	if err != nil {
		return err
	}
	f, err := openAppend(WithdrawnPath(storeDir), storeDir)
	if err != nil {
		return fmt.Errorf("withdrawal journal: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("withdrawal journal: %w", err)
	}
	return nil
}

// Withdrew records an operator's withdrawal of a credential once the
// store has committed it: in the journal in storeDir (NoteWithdrawn) and
// as by's audit line on log (role: the credential's, if it has one). The
// admin API, the admin socket and the offline commands all record theirs
// here. A journal not written is returned for the caller to warn of; the
// audit line is written either way.
func Withdrew(ctx context.Context, log *slog.Logger, storeDir, by, role string, w Withdrawal) error {
	err := NoteWithdrawn(storeDir, w)
	auditWithdrawal(ctx, log, by, role, w)
	return err
}

// withdrew is Withdrew for the server, which warns of a journal not
// written.
func (s *Server) withdrew(ctx context.Context, by, role, kind, id string) {
	w := Withdrawal{Kind: kind, ID: id, At: s.opts.Clock.Now()}
	if err := Withdrew(ctx, s.log, s.opts.StoreDir, by, role, w); err != nil {
		warnNotJournaled(s.log, w, err)
	}
}

func warnNotJournaled(log *slog.Logger, w Withdrawal, err error) {
	log.Warn("withdrawal not journaled: a restore from a backup will not repeat it by itself", "kind", w.Kind, "id", w.ID, "err", err)
}

// auditWithdrawal writes w's audit line, by by, with extra pairs.
func auditWithdrawal(ctx context.Context, log *slog.Logger, by, role string, w Withdrawal, extra ...any) {
	ev := auditEvent[w.Kind]
	if w.Status == store.ACMEDeactivated {
		ev.event = "acme.account.deactivate"
	}
	audit.Log(ctx, log, audit.Entry{Event: ev.event, Requester: by, Role: role, Outcome: "revoked"}, append([]any{ev.field, w.ID}, extra...)...)
}

// NoteWithdrawnOrWarn is NoteWithdrawn with its failure logged as a
// warning.
func NoteWithdrawnOrWarn(storeDir string, w Withdrawal, log *slog.Logger) {
	if err := NoteWithdrawn(storeDir, w); err != nil {
		warnNotJournaled(log, w, err)
	}
}

// ReplayWithdrawn withdraws again, at start, every credential of the
// journal in storeDir that st holds live: the store has gone back (a
// restore). Each one is an audit line (requester "journal") and a warning
// returned for the log and /healthz. A journal line that does not parse
// is skipped with a warning in the log (a line cut by a crash).
func ReplayWithdrawn(ctx context.Context, storeDir string, st store.Store, log *slog.Logger) []string {
	f, err := os.Open(WithdrawnPath(storeDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		log.Warn("withdrawal journal not read", "err", err)
		return nil
	}
	defer f.Close()
	var warnings []string
	err = readLines(f, func(n int, line []byte) {
		var w Withdrawal
		if err := json.Unmarshal(line, &w); err != nil || w.ID == "" {
			log.Warn("withdrawal journal: line skipped", "line", n, "err", err)
			return
		}
		again, err := withdrawAgain(ctx, st, w)
		if err != nil {
			log.Warn("withdrawal journal: not withdrawn again", "kind", w.Kind, "id", w.ID, "err", err)
			return
		}
		if again {
			auditWithdrawal(ctx, log, "journal", "", w, "withdrawn_at", w.At)
			warnings = append(warnings, fmt.Sprintf("%s %s, withdrawn at %s, was live in the store again (restored from a backup?): withdrawn again", w.Kind, w.ID+w.keyNote(), w.At.Format(time.RFC3339)))
		}
	})
	if err != nil {
		log.Warn("withdrawal journal not read to its end", "err", err)
	}
	for _, w := range warnings {
		log.Warn("store older than the withdrawal journal", "warning", w)
	}
	return warnings
}

// keyNote names, for a key rollover, the key withdrawn.
func (w Withdrawal) keyNote() string {
	if w.Kind != WithdrawnAccountKey {
		return ""
	}
	return " (key " + w.Key + ")"
}

// auditEvent names each kind's withdrawal, and the field of its ID, as
// the audit log does.
var auditEvent = map[string]struct{ event, field string }{
	WithdrawnToken:      {"token.revoke", "token_id"},
	WithdrawnEAB:        {"acme.eab.revoke", "kid"},
	WithdrawnAccount:    {"acme.account.revoke", "account"},
	WithdrawnAccountKey: {"acme.account.keychange", "account"},
}

// withdrawAgain withdraws w's credential if st holds it live, and says
// whether it did. The journal is replayed at every start, so a line whose
// credential is gone or withdrawn costs one read, no write.
func withdrawAgain(ctx context.Context, st store.Store, w Withdrawal) (bool, error) {
	live, err := isLive(ctx, st, w)
	if err != nil || !live {
		return false, err
	}
	switch w.Kind {
	case WithdrawnToken:
		err = st.DeleteToken(ctx, w.ID)
	case WithdrawnEAB:
		err = RevokeEAB(ctx, st.(store.ACMEStore), w.ID)
	case WithdrawnAccountKey:
		_, err = st.(store.ACMEStore).UpdateAccount(ctx, w.ID, func(a *store.ACMEAccount) error {
			a.KeyThumbprint, a.JWK = w.SuccessorKey, w.Successor
			return nil
		})
	case WithdrawnAccount:
		status := w.Status
		if status == "" {
			status = store.ACMERevoked
		}
		_, err = st.(store.ACMEStore).UpdateAccount(ctx, w.ID, func(a *store.ACMEAccount) error {
			a.Status = status
			return nil
		})
	}
	return err == nil, err
}

// isLive reports whether st holds w's credential and it still works.
func isLive(ctx context.Context, st store.Store, w Withdrawal) (bool, error) {
	as, acme := st.(store.ACMEStore)
	var err error
	switch {
	case w.Kind == WithdrawnToken:
		_, err = st.GetToken(ctx, w.ID)
	case w.Kind == WithdrawnEAB && acme:
		_, err = as.GetEABKey(ctx, w.ID)
	case w.Kind == WithdrawnAccount && acme:
		var a *store.ACMEAccount
		if a, err = as.GetAccount(ctx, w.ID); err == nil && a.Status != store.ACMEValid {
			return false, nil
		}
	case w.Kind == WithdrawnAccountKey && acme:
		if w.Key == "" || w.SuccessorKey == "" || len(w.Successor) == 0 {
			return false, errors.New("a key rollover without its keys")
		}
		var a *store.ACMEAccount
		if a, err = as.GetAccount(ctx, w.ID); err == nil && a.KeyThumbprint != w.Key {
			return false, nil // rolled over already, or on to another key
		}
	case w.Kind == WithdrawnEAB || w.Kind == WithdrawnAccount || w.Kind == WithdrawnAccountKey:
		return false, nil // a store without ACME holds neither
	default:
		return false, fmt.Errorf("unknown kind %q", w.Kind)
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
