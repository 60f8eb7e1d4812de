package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// TokenRetention is how long a token is kept after it expires: long
// enough for an operator to see in the token list that a pipeline's token
// ran out (the audit log keeps what each token did for good). Then the
// server deletes it, so tokens minted per job or per service do not pile
// up in the store and in every listing.
const TokenRetention = 7 * 24 * time.Hour

// tokenPruneBatch bounds one prune transaction, so issuance sharing the
// store's writer never waits long behind it.
const tokenPruneBatch = 500

// pruneTokens deletes the tokens expired for longer than TokenRetention
// at now. Several replicas may run it at once: deleting is idempotent.
func pruneTokens(ctx context.Context, st store.Store, now time.Time, log *slog.Logger) {
	before := now.Add(-TokenRetention)
	ca.PruneInBatches(ctx, log, "expired tokens", tokenPruneBatch, func(max int) (int, error) {
		return st.PruneTokens(ctx, before, max)
	}, "expired_before", before.UTC().Format(time.RFC3339))
}

// TokenOptions describe a new API token.
type TokenOptions struct {
	Name  string        `json:"name"`
	Roles []string      `json:"roles"`
	Admin bool          `json:"admin"`
	TTL   time.Duration `json:"ttl"`
	// Once makes a single-use enrollment token bound to Names.
	Once  bool     `json:"once"`
	Names []string `json:"names"`
	// CreatedBy is recorded as store.Token.CreatedBy; the server sets it,
	// never a request.
	CreatedBy string `json:"-"`
}

// CreateToken makes a token "<id>.<secret>" and stores only the id and the
// secret's SHA-256. The returned string is the only copy of the secret.
// roles are the CA's roles: the token's must be among them, and an
// enrollment token's names must be issuable under one of its roles, or
// the token could never be used.
func CreateToken(ctx context.Context, st store.Store, now time.Time, roles map[string]*policies.Role, o TokenOptions) (string, *store.Token, error) {
	if err := checkTokenOptions(roles, &o); err != nil {
		return "", nil, err
	}
	if o.TTL == 0 {
		o.TTL = 720 * time.Hour
		if o.Once {
			o.TTL = 10 * time.Minute
		}
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", nil, err
	}
	id := hex.EncodeToString(idb[:])
	secret := rand.Text()
	sum := sha256.Sum256([]byte(secret))
	if o.Name == "" {
		o.Name = id
	}
	t := &store.Token{ID: id, SecretHash: sum[:], Name: o.Name, Roles: o.Roles, Admin: o.Admin, ExpiresAt: now.Add(o.TTL).UTC(), CreatedAt: now.UTC(), Once: o.Once, Names: o.Names, CreatedBy: o.CreatedBy}
	if err := st.PutToken(ctx, t); err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	return id + "." + secret, t, nil
}

// ValidateTokenOptions refuses options that make no token, whatever the
// CA's roles (Malformed): the CLI tells them as bad usage before it reads
// a config, and CreateToken checks them again.
func ValidateTokenOptions(o TokenOptions) error {
	switch {
	case len(o.Roles) == 0 && !o.Admin:
		return errs.New(errs.Malformed, "a token needs at least one role (or --admin)")
	case o.Once && len(o.Names) == 0:
		return errs.New(errs.Malformed, "an enrollment (--once) token must be bound to --names")
	case !o.Once && len(o.Names) > 0:
		return errs.New(errs.Malformed, "--names binds single-use enrollment tokens only; add --once")
	case slices.ContainsFunc(o.Names, func(n string) bool { return strings.TrimSpace(n) == "" }):
		return errs.New(errs.Malformed, "--names %q holds an empty name", strings.Join(o.Names, ","))
	case o.Once && o.Admin:
		return errs.New(errs.Malformed, "an enrollment (--once) token is for one certificate and cannot be --admin")
	case o.TTL < 0:
		return errs.New(errs.Malformed, "ttl %s: want a positive duration", o.TTL)
	}
	return nil
}

// checkTokenOptions refuses options no token should have, and writes an
// enrollment token's names as its certificate will carry them.
func checkTokenOptions(roles map[string]*policies.Role, o *TokenOptions) error {
	for _, r := range o.Roles {
		if roles[r] == nil {
			return errs.New(errs.NotFound, "unknown role %q", r)
		}
	}
	if err := ValidateTokenOptions(*o); err != nil {
		return err
	}
	if !o.Once {
		return nil
	}
	names := make([]string, 0, len(o.Names))
	for _, n := range o.Names {
		if n = policies.RecordedName(strings.TrimSpace(n)); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	o.Names = names
	var refusals []string
	for _, r := range o.Roles {
		err := policies.CheckBoundNames(roles[r], names)
		if err == nil {
			return nil
		}
		refusals = append(refusals, err.Error())
	}
	return errs.New(errs.RejectedIdentifier, "this enrollment token could never be used: %s", strings.Join(refusals, "; "))
}

// authenticate checks "Bearer <id>.<secret>": look-up by id, then one
// constant-time comparison of SHA-256 digests.
func authenticate(ctx context.Context, st store.Store, now time.Time, header string) (*store.Token, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		return nil, errs.New(errs.Unauthorized, "missing credentials: send Authorization: Bearer <token>")
	}
	id, secret, ok := strings.Cut(strings.TrimSpace(raw), ".")
	if !ok || id == "" || secret == "" {
		return nil, errs.New(errs.Unauthorized, "malformed token: want <id>.<secret>")
	}
	t, err := st.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.Unauthorized, "unknown or revoked token")
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.SecretHash) != 1 {
		return nil, errs.New(errs.Unauthorized, "unknown or revoked token")
	}
	if !now.Before(t.ExpiresAt) {
		return nil, errs.New(errs.Unauthorized, "token %s expired at %s", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	if t.Once && !t.UsedAt.IsZero() {
		return nil, errs.New(errs.Unauthorized, "enrollment token %s was already used", t.Name)
	}
	// An enrollment token lives minutes. One made while this clock ran
	// ahead, since set back, would live that much longer unused, and a
	// new one costs a command. (A long-lived token made then is kept:
	// refused, every CI job holding it would fail for as long.)
	if t.Once && t.CreatedAt.After(now.Add(policies.Backdate)) {
		return nil, errs.New(errs.Unauthorized, "enrollment token %s was made at %s, after this clock's reading (%s): the clock ran ahead then and has been set back since; make a new one", t.Name, t.CreatedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// TokenExpiresHeader is the header that, on an answer to a request a
// stored token made, says when that token expires (RFC 3339): a CI job can
// warn before its token stops working, rather than fail the day it does.
const TokenExpiresHeader = "Pkid-Token-Expires"

// tokenOf authenticates the request's stored token, and says on w when it
// expires (TokenExpiresHeader), whatever the answer turns out to be:
// every request a stored token makes goes through here. Not for a
// single-use token, spent by the request.
func (s *Server) tokenOf(w http.ResponseWriter, r *http.Request) (*store.Token, error) {
	t, err := authenticate(r.Context(), s.opts.Store, s.opts.Clock.Now(), r.Header.Get("Authorization"))
	if err == nil && !t.Once {
		w.Header().Set(TokenExpiresHeader, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return t, err
}

// allowsRole reports whether t may issue under role.
func allowsRole(t *store.Token, role string) error {
	if slices.Contains(t.Roles, role) {
		return nil
	}
	return errs.New(errs.Forbidden, "token %s may not use role %q (its roles: %s)", t.Name, role, strings.Join(t.Roles, ", "))
}

// TokenView is a token as the admin API and `pkid token list` show it:
// never its secret or the secret's hash.
type TokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Admin     bool      `json:"admin"`
	Once      bool      `json:"once,omitempty"`
	Names     []string  `json:"names,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// ListTokens lists the tokens in st, oldest first (the store keeps them
// in the order of their random ids).
func ListTokens(ctx context.Context, st store.Store) ([]TokenView, error) {
	ts, err := st.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TokenView, 0, len(ts))
	for _, t := range ts {
		out = append(out, TokenView{ID: t.ID, Name: t.Name, Roles: t.Roles, Admin: t.Admin, Once: t.Once, Names: t.Names, ExpiresAt: t.ExpiresAt, CreatedAt: t.CreatedAt, UsedAt: t.UsedAt, CreatedBy: t.CreatedBy})
	}
	slices.SortStableFunc(out, func(a, b TokenView) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}
