// Package acme is pkid's RFC 8555 server: JWS, nonces, accounts, orders,
// authorizations, challenges and certificate download. Each role with
// acme.enabled has its own directory at /acme/{role}/directory and its
// policy governs every order. Issuance itself is handed to package ca;
// validation runs behind the Validator interface on a bounded worker pool.
package acme

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"pkid/ca"
	"pkid/internal/respond"
	"pkid/policies"
	"pkid/store"
)

const cryptoSHA256 = crypto.SHA256

// Deps is what the ACME server needs.
type Deps struct {
	CA          *ca.Authority
	Store       store.ACMEStore
	Nonces      NonceStore
	Validator   Validator
	ExternalURL string
	Clock       ca.Clock
	Log         *slog.Logger
	// Workers bounds concurrent validations (default 32).
	Workers int
	// OrderLifetime bounds pending orders and authorizations (default 24h).
	OrderLifetime time.Duration
	// AuthzReuse lets a valid authorization serve the same account's new
	// orders for this long after validation (0: no reuse).
	AuthzReuse time.Duration
	// FailedValidations failures per FailedPer is how often one account
	// may fail to validate one identifier before newOrder refuses it that
	// identifier for a while (config acme.failed_validations; 0: no
	// bound), counted by the CA in its store. See failedTooOften.
	FailedValidations int
	FailedPer         time.Duration
	// UnfinishedOrders in any UnfinishedPer is how many orders one account
	// may leave without a certificate before newOrder refuses it for a
	// while (config acme.unfinished_orders; 0: no bound). See
	// tooManyUnfinished.
	UnfinishedOrders int
	UnfinishedPer    time.Duration
	// NewAccounts in any NewAccountsPer is how many accounts one client
	// address may register before newAccount refuses it for a while
	// (config acme.new_accounts; 0: no bound). See tooManyAccounts.
	NewAccounts    int
	NewAccountsPer time.Duration
	// Limited, if set, is told the setting of each refusal by a rate
	// limit (errs.Error.Limit): serve counts them in /metrics.
	Limited func(limit string)
	// EAB verifies external account bindings (nil: none can be required).
	EAB EABVerifier
	// Deactivated, if set, is told of each account that deactivated itself
	// (RFC 8555 §7.3.6), once the store has it: serve journals it, so that
	// a store restored from a backup does not bring the account back.
	Deactivated func(ctx context.Context, accountID string)
	// KeyChanged, if set, is told of each key rollover (RFC 8555 §7.3.5)
	// once the store has it, with the thumbprint of the key withdrawn and
	// the new key's JWK and thumbprint: serve journals it, so that a store
	// restored from a backup does not give the account back to the old
	// key.
	KeyChanged func(ctx context.Context, accountID, oldThumbprint string, newJWK []byte, newThumbprint string)
}

// Server serves /acme/.
type Server struct {
	d           Deps
	link        linker
	externalURL string
	log         *slog.Logger
	pool        *pool
	keys        keyCache
}

// New validates deps and starts the validation workers; Close stops them.
func New(d Deps) *Server {
	if d.Clock == nil {
		d.Clock = ca.SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Workers == 0 {
		d.Workers = 32
	}
	if d.OrderLifetime == 0 {
		d.OrderLifetime = 24 * time.Hour
	}
	if d.Nonces == nil {
		d.Nonces = NewMemoryNonces(time.Hour, 100000, d.Clock.Now)
	}
	ext := strings.TrimSuffix(d.ExternalURL, "/")
	s := &Server{d: d, link: newLinker(ext), externalURL: ext, log: d.Log}
	s.pool = newPool(d.Workers, s.runValidation)
	return s
}

// Close stops the validation workers.
func (s *Server) Close() { s.pool.close() }

// Handler routes every ACME resource.
func (s *Server) Handler() http.Handler {
	// One flat router, not a /acme/{role} subrouter: gorilla/mux answers a
	// subrouter's wrong method with its parent's 404 instead of a 405.
	r := mux.NewRouter()
	for _, rt := range []struct {
		path    string
		h       http.HandlerFunc
		methods []string
	}{
		{"/directory", s.directory, []string{http.MethodGet, http.MethodHead}},
		{"/new-nonce", s.newNonce, nil},
		{"/new-account", s.newAccount, []string{http.MethodPost}},
		{"/acct/{id}", s.account, []string{http.MethodPost}},
		{"/acct/{id}/orders", s.orders, []string{http.MethodPost}},
		{"/new-order", s.newOrder, []string{http.MethodPost}},
		{"/order/{id}", s.order, []string{http.MethodPost}},
		{"/order/{id}/finalize", s.finalize, []string{http.MethodPost}},
		{"/authz/{id}", s.authz, []string{http.MethodPost}},
		{"/chall/{authz}/{type}", s.challenge, []string{http.MethodPost}},
		{"/cert/{serial}", s.cert, []string{http.MethodPost}},
		{"/revoke-cert", s.revokeCert, []string{http.MethodPost}},
		{"/key-change", s.keyChange, []string{http.MethodPost}},
		{"/renewal-info/{certid}", s.renewalInfo, []string{http.MethodGet, http.MethodHead}},
	} {
		route := r.HandleFunc("/acme/{role}"+rt.path, rt.h)
		if rt.methods != nil {
			route.Methods(rt.methods...)
		}
	}
	nf := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, notFound("no such ACME resource: "+r.URL.Path))
	})
	mna := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		takes := "ACME resources take POST (POST-as-GET to read)"
		if strings.HasSuffix(r.URL.Path, "/directory") {
			takes = "the directory is read with GET"
		}
		if strings.Contains(r.URL.Path, "/renewal-info/") {
			takes = "renewal information is read with GET (RFC 9773 §4.1)"
		}
		p := malformed(r.Method + " is not allowed on " + r.URL.Path + "; " + takes)
		p.Status = http.StatusMethodNotAllowed
		s.writeProblem(w, r, p)
	})
	r.NotFoundHandler, r.MethodNotAllowedHandler = nf, mna
	return s.common(r)
}

// common adds a fresh Replay-Nonce and the index link to every response,
// errors included, and refuses roles without ACME.
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/acme/"), "/", 2)
		role := parts[0]
		w.Header().Set("Replay-Nonce", s.d.Nonces.New())
		w.Header().Set("Cache-Control", "no-store")
		if rl := s.d.CA.Role(role); rl == nil || !rl.ACME.Enabled {
			s.writeProblem(w, r, notFound("no ACME directory for role "+role+" (a role needs acme.enabled)"))
			return
		}
		w.Header().Add("Link", `<`+s.link.directory(role)+`>;rel="index"`)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) roleOf(r *http.Request) (string, *policies.Role) {
	name := mux.Vars(r)["role"]
	return name, s.d.CA.Role(name)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	respond.JSON(w, status, "application/json", v)
}

func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	role, rl := s.roleOf(r)
	meta := map[string]any{"externalAccountRequired": rl.ACME.RequireEAB,
		// ACME profiles (draft-ietf-acme-profiles): a role is a profile,
		// and each directory offers its own only.
		"profiles": map[string]string{role: describeProfile(role, rl)}}
	writeJSON(w, http.StatusOK, map[string]any{
		"newNonce":   s.link.newNonce(role),
		"newAccount": s.link.newAccount(role),
		"newOrder":   s.link.newOrder(role),
		"revokeCert": s.link.revokeCert(role),
		"keyChange":  s.link.keyChange(role),
		// RFC 9773: when to renew, and "replaces" in new orders.
		"renewalInfo": s.link.renewalInfo(role),
		"meta":        meta,
	})
}

// describeProfile is the directory's human-readable description of role's
// certificates.
func describeProfile(role string, rl *policies.Role) string {
	return fmt.Sprintf("pkid role %s: certificates valid %s, for %s; each role is a profile with a directory of its own",
		role, rl.DefaultTTL, strings.Join(rl.ExtKeyUsage, " and "))
}

func (s *Server) newNonce(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		p := malformed(r.Method + " is not allowed on newNonce; use HEAD or GET")
		p.Status = http.StatusMethodNotAllowed
		s.writeProblem(w, r, p)
		return
	}
	if r.Method == http.MethodGet {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusOK)
}
