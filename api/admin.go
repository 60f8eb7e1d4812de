package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"pkid/acme"
	"pkid/errs"
	"pkid/internal/audit"
	"pkid/policies"
	"pkid/store"
)

// AdminHandler serves the local admin socket (D/pkid.sock, mode 0600): the
// CLI's --config commands reach the running server through it, since bbolt
// admits one process per file. Possession of the socket is the credential.
func (s *Server) AdminHandler() http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/tokens", func(w http.ResponseWriter, r *http.Request) { s.doCreateToken(w, r, adminSocket) }).Methods(http.MethodPost)
	r.HandleFunc("/tokens", s.doListTokens).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/tokens/{id}", func(w http.ResponseWriter, r *http.Request) { s.doDeleteToken(w, r, adminSocket) }).Methods(http.MethodDelete)
	r.HandleFunc("/certs", s.doListCerts).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/revoke", s.adminRevoke).Methods(http.MethodPost)
	r.HandleFunc("/eab", s.adminEAB).Methods(http.MethodPost)
	r.HandleFunc("/eab", s.adminListEAB).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/eab/{kid}", s.adminRevokeEAB).Methods(http.MethodDelete)
	r.HandleFunc("/acme-accounts", s.adminListAccounts).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/acme-accounts/{id}/revoke", s.adminRevokeAccount).Methods(http.MethodPost)
	r.HandleFunc("/backup", s.adminBackup).Methods(http.MethodGet)
	r.HandleFunc("/reapply-crl", s.adminReapplyCRL).Methods(http.MethodPost)
	r.HandleFunc("/adopt", s.adminAdopt).Methods(http.MethodPost)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	return s.middleware(r, MaxAdminBody)
}

// MaxAdminBody bounds a request body on the admin socket: a CRL to
// reapply may list a million revocations (about 40 MB), and only the CA
// host's operator reaches the socket.
const MaxAdminBody = 64 << 20

// adminSocket is who asks through the admin socket, as the audit log and
// store.Token.CreatedBy name them.
const adminSocket = "admin-socket"

func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request) {
	var b revokeBody
	if err := decodeJSON(r, &b); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	rec, sameKey, err := s.opts.CA.Revoke(r.Context(), b.Serial, b.Reason)
	if err != nil {
		s.logAudit(r.Context(), "revoke", adminSocket, "", nil, "refused", b.Serial, err.Error())
		writeProblem(w, r, s.log, err)
		return
	}
	s.answerRevoked(w, r, adminSocket, rec, sameKey, s.adminView(rec))
}

func (s *Server) adminEAB(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(r, &b); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	kid, key, err := CreateEAB(r.Context(), s.opts.EAB, s.opts.CA.Role(b.Role), b.Role)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "acme.eab.create", Requester: adminSocket, Role: b.Role, Outcome: "accepted"}, "kid", kid)
	writeJSON(w, http.StatusCreated, map[string]string{"kid": kid, "hmac": key})
}

// BackupTrailer is the trailer of a backup streamed over the admin socket:
// "ok <bytes>" once the copy is whole, else what failed. The body cannot
// carry a problem document once it has begun, and a client must not keep
// a copy cut short.
const BackupTrailer = "Pkid-Backup"

func (s *Server) adminBackup(w http.ResponseWriter, r *http.Request) {
	b, ok := s.opts.Store.(store.Backuper)
	if !ok {
		writeProblem(w, r, s.log, errs.New(errs.Unavailable, "this store (%T) makes no backups; use the database's own tools", s.opts.Store))
		return
	}
	// A large store takes longer than the socket's write timeout, which
	// would cut the copy; it still stops if the client goes away (its
	// context ends).
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		s.log.Warn("backup: cannot lift the write deadline", "err", err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", BackupTrailer)
	n, err := b.Backup(r.Context(), w)
	if err != nil {
		s.log.Error("backup over the admin socket", "bytes", n, "err", err)
		w.Header().Set(BackupTrailer, "failed: "+err.Error())
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "backup", Requester: adminSocket, Outcome: "accepted"}, "bytes", n)
	w.Header().Set(BackupTrailer, fmt.Sprintf("ok %d", n))
}

// CreateEAB makes a binding key for a role with ACME enabled.
func CreateEAB(ctx context.Context, e *acme.EAB, role *policies.Role, name string) (string, string, error) {
	if role == nil {
		return "", "", errs.New(errs.NotFound, "unknown role %q", name)
	}
	if !role.ACME.Enabled {
		return "", "", errs.New(errs.Forbidden, "role %q has no ACME directory (acme.enabled is false)", name)
	}
	return e.Create(ctx, name)
}
