package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"pkid/internal/audit"
	"pkid/store"
)

// newToken makes a challenge token: 128 random bits, base64url (RFC 8555
// §8.1 asks for at least 128 bits of entropy).
func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

type challengeView struct {
	Type      string          `json:"type"`
	URL       string          `json:"url"`
	Status    string          `json:"status"`
	Token     string          `json:"token"`
	Validated string          `json:"validated,omitempty"`
	Error     json.RawMessage `json:"error,omitempty"`
}

type authzView struct {
	Status     string          `json:"status"`
	Expires    string          `json:"expires"`
	Identifier Ident           `json:"identifier"`
	Challenges []challengeView `json:"challenges"`
	Wildcard   bool            `json:"wildcard,omitempty"`
}

func (s *Server) viewChallenge(az *store.ACMEAuthz, c *store.ACMEChallenge) challengeView {
	v := challengeView{Type: c.Type, URL: s.link.challenge(az.Role, az.ID, c.Type), Status: c.Status, Token: c.Token, Error: c.Error}
	if !c.Validated.IsZero() {
		v.Validated = c.Validated.UTC().Format(time.RFC3339)
	}
	return v
}

func (s *Server) viewAuthz(az *store.ACMEAuthz) authzView {
	v := authzView{Status: az.Status, Expires: az.Expires.UTC().Format(time.RFC3339), Identifier: az.Identifier, Wildcard: az.Wildcard}
	if (az.Status == store.ACMEValid || az.Status == store.ACMEPending) && !s.d.Clock.Now().Before(az.Expires) {
		v.Status = store.ACMEExpired
	}
	for i := range az.Challenges {
		v.Challenges = append(v.Challenges, s.viewChallenge(az, &az.Challenges[i]))
	}
	return v
}

func (s *Server) loadAuthz(r *http.Request, req *request, id string) (*store.ACMEAuthz, error) {
	az, err := s.d.Store.GetAuthz(r.Context(), id)
	if err != nil || az.AccountID != req.account.ID {
		return nil, notFound("no authorization " + id + " for this account")
	}
	return az, nil
}

// authz is POST-as-GET or deactivation (RFC 8555 §7.5.2).
func (s *Server) authz(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	var az *store.ACMEAuthz
	if err == nil {
		az, err = s.loadAuthz(r, req, mux.Vars(r)["id"])
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if !req.postAsGet {
		var b struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(req.payload, &b); err != nil || b.Status != store.ACMEDeactivated {
			s.writeProblem(w, r, malformed(`an authorization may only be updated with {"status":"deactivated"}`))
			return
		}
		az, err = s.d.Store.UpdateAuthz(r.Context(), az.ID, func(a *store.ACMEAuthz) error {
			if a.Status != store.ACMEPending && a.Status != store.ACMEValid {
				return malformed("authorization is " + a.Status + " and cannot be deactivated")
			}
			a.Status = store.ACMEDeactivated
			return nil
		})
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
	}
	if az.Status == store.ACMEPending {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, http.StatusOK, s.viewAuthz(az))
}

// challengeWait bounds how long a challenge POST waits for its validation
// before answering "processing".
const challengeWait = 500 * time.Millisecond

// awaitValidation waits for done up to challengeWait; it reports whether
// the validation was recorded.
func (s *Server) awaitValidation(ctx context.Context, done <-chan struct{}) bool {
	t := time.NewTimer(challengeWait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// challenge starts validation on a POST with a payload ({}), or reads the
// challenge on POST-as-GET.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	var az *store.ACMEAuthz
	if err == nil {
		az, err = s.loadAuthz(r, req, mux.Vars(r)["authz"])
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	typ := mux.Vars(r)["type"]
	idx := -1
	for i := range az.Challenges {
		if az.Challenges[i].Type == typ {
			idx = i
		}
	}
	if idx < 0 {
		s.writeProblem(w, r, notFound("authorization offers no "+typ+" challenge"))
		return
	}
	c := &az.Challenges[idx]
	if !req.postAsGet && az.Status == store.ACMEPending && c.Status == store.ACMEPending {
		if !s.d.Clock.Now().Before(az.Expires) {
			s.writeProblem(w, r, malformed("authorization expired"))
			return
		}
		// The challenge stays pending in the store while it is validated:
		// a validation lost to a restart leaves it retryable rather than
		// stuck in processing. The in-flight set (harmless to lose) keeps
		// repeated POSTs from queueing it twice.
		done, err := s.pool.start(job{authzID: az.ID, idx: idx, accountID: req.account.ID, requestID: audit.RequestID(r.Context())})
		if err == errQueueFull {
			p := prob("rateLimited", 503, "too many validations in progress; retry")
			w.Header().Set("Retry-After", "1")
			s.writeProblem(w, r, p)
			return
		}
		// Most internal validations take milliseconds: answer with the
		// outcome when it comes within challengeWait, so the client's
		// first poll finds the authorization decided; otherwise answer
		// "processing" as usual.
		if s.awaitValidation(r.Context(), done) {
			if fresh, err := s.d.Store.GetAuthz(r.Context(), az.ID); err == nil {
				az, c = fresh, &fresh.Challenges[idx]
			}
		}
	}
	view := s.viewChallenge(az, c)
	if c.Status == store.ACMEPending && s.pool.running(az.ID, idx) {
		view.Status = store.ACMEProcessing
	}
	if view.Status == store.ACMEProcessing || view.Status == store.ACMEPending {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Add("Link", `<`+s.link.authz(req.role, az.ID)+`>;rel="up"`)
	writeJSON(w, http.StatusOK, view)
}
