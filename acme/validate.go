package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"pkid/internal/audit"
	"pkid/policies"
	"pkid/store"
)

// Challenge is what a Validator checks: that whoever answers for the
// identifier holds the account key (the key authorization, RFC 8555 §8.1).
type Challenge struct {
	Type       string
	Identifier Ident
	Token      string
	KeyAuth    string
	// RedirectTo says whether http-01 may follow a redirect to host: nil
	// follows none. The server lets it reach only what the authorization's
	// role could itself certify, so an answer cannot steer the CA to any
	// host the CA can reach.
	RedirectTo func(host string) error
}

// Validator checks challenges. It is an interface so validation could run
// in its own process later; errors it returns should be *Problem.
type Validator interface {
	Supports(challengeType string) bool
	Validate(ctx context.Context, c Challenge) error
}

// validationTimeout bounds one validation, connection and redirects
// included.
const validationTimeout = 15 * time.Second

type job struct {
	authzID, accountID string
	idx                int
	// requestID is the challenge POST's, for the outcome's audit line.
	requestID string
}

// pool runs validations on a fixed number of workers, off the request path.
type pool struct {
	jobs     chan job
	wg       sync.WaitGroup
	stop     chan struct{}
	once     sync.Once
	inflight sync.Map // "authzID/idx" -> chan struct{}, closed when recorded
}

var errQueueFull = errors.New("validation queue full")

func (j job) key() string { return j.authzID + "/" + strconv.Itoa(j.idx) }

// start queues j unless it is already queued or running, and returns a
// channel closed when its validation has been recorded.
func (p *pool) start(j job) (<-chan struct{}, error) {
	done := make(chan struct{})
	if prev, dup := p.inflight.LoadOrStore(j.key(), done); dup {
		return prev.(chan struct{}), nil
	}
	if !p.submit(j) {
		p.inflight.Delete(j.key())
		return nil, errQueueFull
	}
	return done, nil
}

func (p *pool) running(authzID string, idx int) bool {
	_, ok := p.inflight.Load(job{authzID: authzID, idx: idx}.key())
	return ok
}

// finish marks j's validation as recorded.
func (p *pool) finish(j job) {
	if done, ok := p.inflight.LoadAndDelete(j.key()); ok {
		close(done.(chan struct{}))
	}
}

func newPool(workers int, run func(job)) *pool {
	p := &pool{jobs: make(chan job, workers*64), stop: make(chan struct{})}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case j := <-p.jobs:
					run(j)
					p.finish(j)
				case <-p.stop:
					return
				}
			}
		}()
	}
	return p
}

// submit queues j, or reports false when the queue is full.
func (p *pool) submit(j job) bool {
	select {
	case p.jobs <- j:
		return true
	default:
		return false
	}
}

func (p *pool) close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// runValidation validates one challenge and records the outcome: the
// challenge and its authorization become valid, or both invalid with the
// problem kept in the challenge.
func (s *Server) runValidation(j job) {
	ctx, cancel := context.WithTimeout(audit.WithRequestID(context.Background(), j.requestID), validationTimeout)
	defer cancel()
	az, err := s.d.Store.GetAuthz(ctx, j.authzID)
	if err != nil {
		s.log.Error("validation: load authz", "authz", j.authzID, "err", err)
		return
	}
	acct, err := s.d.Store.GetAccount(ctx, j.accountID)
	if err != nil {
		s.log.Error("validation: load account", "account", j.accountID, "err", err)
		return
	}
	c := az.Challenges[j.idx]
	verr := s.d.Validator.Validate(ctx, Challenge{Type: c.Type, Identifier: az.Identifier, Token: c.Token, KeyAuth: c.Token + "." + acct.KeyThumbprint,
		RedirectTo: redirectPolicy(az.Role, s.d.CA.Role(az.Role))})
	now := s.d.Clock.Now().UTC()
	failed := false
	_, err = s.d.Store.UpdateAuthz(context.Background(), az.ID, func(a *store.ACMEAuthz) error {
		ch := &a.Challenges[j.idx]
		failed = false
		if ch.Status != store.ACMEPending || a.Status != store.ACMEPending {
			return nil
		}
		if verr != nil {
			failed = true
			p := toProblem(verr)
			if p.Status >= 500 {
				p = connectionProblem(verr.Error())
			}
			ch.Status, a.Status = store.ACMEInvalid, store.ACMEInvalid
			ch.Error, _ = json.Marshal(p)
			return nil
		}
		ch.Status, ch.Validated = store.ACMEValid, now
		a.Status, a.ValidatedAt = store.ACMEValid, now
		return nil
	})
	if err != nil {
		s.log.Error("validation: record outcome", "authz", az.ID, "err", err)
	} else if failed {
		s.noteFailure(context.Background(), az.Role, acct.ID, az.Identifier)
	}
	e := audit.Entry{Event: "acme.validate", Requester: accountRequester(acct.ID), Role: az.Role, Names: []string{az.Identifier.Value}, Outcome: "valid"}
	if verr != nil {
		e.Outcome, e.Reason = "invalid", verr.Error()
	}
	audit.Log(ctx, s.log, e, "challenge", c.Type)
}

// redirectPolicy admits a redirect target that role rl could certify as an
// identifier of its own (a name in its domains, an address in its ranges):
// a central responder under the same domains works, an arbitrary internal
// host does not. A role since removed admits none.
func redirectPolicy(name string, rl *policies.Role) func(host string) error {
	return func(host string) error {
		if rl == nil {
			return fmt.Errorf("role %q no longer exists", name)
		}
		typ, value := "dns", policies.NormalizeDNS(host)
		if a, err := netip.ParseAddr(host); err == nil {
			typ, value = "ip", a.String()
		}
		if why := policies.CheckIdentifier(rl, typ, value); why != "" {
			return fmt.Errorf("%s is not a name role %q could certify (%s)", host, name, why)
		}
		return nil
	}
}
