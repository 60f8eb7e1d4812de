package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sort"

	"github.com/gorilla/mux"

	"pkid/internal/audit"
	"pkid/policies"
	"pkid/store"
)

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

type tokenBody struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Admin bool     `json:"admin"`
	TTL   string   `json:"ttl"`
	Once  bool     `json:"once"`
	Names []string `json:"names"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	tok, err := s.requireAdmin(w, r)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.doCreateToken(w, r, "token:"+tok.ID)
}

// doCreateToken is shared by the admin API and the admin socket; by is
// who asks (store.Token.CreatedBy).
func (s *Server) doCreateToken(w http.ResponseWriter, r *http.Request, by string) {
	var b tokenBody
	if err := decodeJSON(r, &b); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	ttl, err := parseTTL(b.TTL)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	secret, t, err := CreateToken(r.Context(), s.opts.Store, s.opts.Clock.Now(), s.opts.CA.Roles(), TokenOptions{Name: b.Name, Roles: b.Roles, Admin: b.Admin, TTL: ttl, Once: b.Once, Names: b.Names, CreatedBy: by})
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	AuditTokenCreated(r.Context(), s.log, by, t)
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "id": t.ID, "name": t.Name, "expires_at": t.ExpiresAt})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if _, err := s.requireAdmin(w, r); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.doListTokens(w, r)
}

func (s *Server) doListTokens(w http.ResponseWriter, r *http.Request) {
	out, err := ListTokens(r.Context(), s.opts.Store)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	tok, err := s.requireAdmin(w, r)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.doDeleteToken(w, r, "token:"+tok.ID)
}

// doDeleteToken is shared by the admin API and the admin socket.
func (s *Server) doDeleteToken(w http.ResponseWriter, r *http.Request, by string) {
	id := mux.Vars(r)["id"]
	if err := s.opts.Store.DeleteToken(r.Context(), id); err != nil {
		writeProblem(w, r, s.log, notFound(err, "no token with id "+id))
		return
	}
	s.withdrew(r.Context(), by, "", WithdrawnToken, id)
	w.WriteHeader(http.StatusNoContent)
}

// roleView is a role as /v1/roles shows it: what a client may ask for.
type roleView struct {
	Name               string   `json:"name"`
	AllowedDomains     []string `json:"allowed_domains"`
	AllowSubdomains    bool     `json:"allow_subdomains"`
	AllowBareDomains   bool     `json:"allow_bare_domains"`
	AllowWildcards     bool     `json:"allow_wildcards"`
	AllowedIPRanges    []string `json:"allowed_ip_ranges"`
	AllowedURIPatterns []string `json:"allowed_uri_patterns"`
	DefaultTTL         string   `json:"default_ttl"`
	MaxTTL             string   `json:"max_ttl"`
	KeyTypes           []string `json:"key_types"`
	ExtKeyUsage        []string `json:"ext_key_usage"`
	RevocationPointers bool     `json:"revocation_pointers"`
	ACME               bool     `json:"acme"`
}

func viewRole(name string, r *policies.Role) roleView {
	v := roleView{Name: name, AllowedDomains: r.AllowedDomains, AllowSubdomains: r.AllowSubdomains, AllowBareDomains: r.AllowBareDomains,
		AllowWildcards: r.AllowWildcards, AllowedURIPatterns: r.AllowedURIPatterns, DefaultTTL: r.DefaultTTL.String(), MaxTTL: r.MaxTTL.String(),
		KeyTypes: r.KeyTypes, ExtKeyUsage: r.ExtKeyUsage, RevocationPointers: r.Pointers(), ACME: r.ACME.Enabled}
	for _, p := range r.AllowedIPRanges {
		v.AllowedIPRanges = append(v.AllowedIPRanges, p.String())
	}
	return v
}

func (s *Server) roles(w http.ResponseWriter, r *http.Request) {
	tok, err := s.tokenOf(w, r)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	var out []roleView
	for name, role := range s.opts.CA.Roles() {
		if tok.Admin || slices.Contains(tok.Roles, name) {
			out = append(out, viewRole(name, role))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"roles": out})
}

// AuditTokenCreated logs the creation of t by by: through the API or the
// admin socket, or by an offline command (OfflineAudit).
func AuditTokenCreated(ctx context.Context, log *slog.Logger, by string, t *store.Token) {
	audit.Log(ctx, log, audit.Entry{Event: "token.create", Requester: by, Names: t.Names, Outcome: "accepted"},
		"token_id", t.ID, "name", t.Name, "roles", t.Roles, "admin", t.Admin, "once", t.Once)
}
