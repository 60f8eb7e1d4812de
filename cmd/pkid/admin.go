package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/errs"
	"pkid/internal/audit"
	"pkid/internal/unixsock"
	"pkid/store"
)

// admin reaches the CA's state for --config commands: through the running
// server's admin socket when there is one (bbolt admits one process per
// file), else by opening the store directly.
type admin struct {
	cfg    *config.Config
	client *http.Client // nil: direct store access
}

func newAdmin(cfg *config.Config) *admin {
	sock := cfg.AdminSocketPath()
	a := &admin{cfg: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	conn, err := unixsock.Dial(ctx, sock)
	cancel()
	if err != nil {
		return a // not running (or a stale socket): go direct
	}
	conn.Close()
	a.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return unixsock.Dial(ctx, sock)
		},
	}}
	return a
}

// call does one admin-socket request, decoding a 2xx JSON answer into out
// or turning a problem document into an error.
func (a *admin) call(method, path string, in, out any) error {
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	return a.send(a.client, method, path, "application/json", body, out)
}

// send is call with a body of any type, through client.
func (a *admin) send(client *http.Client, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://pkid"+path, rd)
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var p api.Problem
		if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
			return errors.New(p.Detail)
		}
		return fmt.Errorf("admin socket: HTTP %d", resp.StatusCode)
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// withStore opens the store for a direct operation.
func (a *admin) withStore(fn func(store.Store) error) error {
	st, err := store.OpenBolt(a.cfg.Resolve(a.cfg.Storage.Path))
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("the store is locked by a running pkid whose admin socket is not reachable")
		}
		return err
	}
	defer st.Close()
	return fn(st)
}

func (a *admin) createToken(o api.TokenOptions) (string, error) {
	if a.client != nil {
		var out struct {
			Token string `json:"token"`
		}
		in := map[string]any{"name": o.Name, "roles": o.Roles, "admin": o.Admin, "once": o.Once, "names": o.Names}
		if o.TTL > 0 {
			in["ttl"] = o.TTL.String()
		}
		err := a.call(http.MethodPost, "/tokens", in, &out)
		return out.Token, err
	}
	var tok string
	err := a.withStore(func(st store.Store) error {
		o.CreatedBy = api.OfflineRequester
		secret, t, err := api.CreateToken(context.Background(), st, time.Now(), a.cfg.Roles, o)
		if err != nil {
			return err
		}
		tok = secret
		a.offlineAudit(func(ctx context.Context, log *slog.Logger) { api.AuditTokenCreated(ctx, log, api.OfflineRequester, t) })
		return nil
	})
	return tok, err
}

func (a *admin) listTokens() ([]api.TokenView, error) {
	if a.client != nil {
		var out struct {
			Items []api.TokenView `json:"items"`
		}
		err := a.call(http.MethodGet, "/tokens", nil, &out)
		return out.Items, err
	}
	var rows []api.TokenView
	err := a.withStore(func(st store.Store) error {
		var err error
		rows, err = api.ListTokens(context.Background(), st)
		return err
	})
	return rows, err
}

func (a *admin) deleteToken(id string) error {
	if a.client != nil {
		return a.call(http.MethodDelete, "/tokens/"+id, nil, nil)
	}
	return a.withStore(func(st store.Store) error {
		if err := st.DeleteToken(context.Background(), id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no token with id %s", id)
		} else if err != nil {
			return err
		}
		a.withdrew("", api.WithdrawnToken, id)
		return nil
	})
}

// offlineAudit gives fn the audit log of a change made on the store with
// serve stopped (api.OfflineAudit), which serve logs at its next start. A
// log that cannot be written is a warning on stderr: the change stands.
func (a *admin) offlineAudit(fn func(context.Context, *slog.Logger)) {
	oa, err := api.OpenOfflineAudit(api.StoreDir(a.cfg))
	if err == nil {
		fn(context.Background(), oa.Log)
		err = oa.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v: serve's audit log will not have this change\n", err)
	}
}

// withdrew records a withdrawal made on the store directly, as serve
// records its own (api.Withdrew): journaled, and on the offline audit
// log; a journal not written is a warning on stderr.
func (a *admin) withdrew(role, kind, id string) {
	a.offlineAudit(func(ctx context.Context, log *slog.Logger) {
		if err := api.Withdrew(ctx, log, api.StoreDir(a.cfg), api.OfflineRequester, role, api.Withdrawal{Kind: kind, ID: id, At: time.Now()}); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v: a restore from a backup will not withdraw %s %s again by itself\n", err, kind, id)
		}
	})
}

func (a *admin) listEAB() ([]api.EABView, error) {
	if a.client != nil {
		var out struct {
			Items []api.EABView `json:"items"`
		}
		err := a.call(http.MethodGet, "/eab", nil, &out)
		return out.Items, err
	}
	var rows []api.EABView
	err := a.withStore(func(st store.Store) error {
		var err error
		rows, err = api.ListEAB(context.Background(), st.(store.ACMEStore))
		return err
	})
	return rows, err
}

func (a *admin) revokeEAB(kid string) error {
	if a.client != nil {
		return a.call(http.MethodDelete, "/eab/"+url.PathEscape(kid), nil, nil)
	}
	return a.withStore(func(st store.Store) error {
		if err := api.RevokeEAB(context.Background(), st.(store.ACMEStore), kid); err != nil {
			return err
		}
		a.withdrew("", api.WithdrawnEAB, kid)
		return nil
	})
}

// listAccounts lists the ACME accounts of role ("" for all) through the
// running server, or from the store.
func (a *admin) listAccounts(role string) ([]api.AccountView, error) {
	if a.client != nil {
		var out struct {
			Items []api.AccountView `json:"items"`
		}
		path := "/acme-accounts"
		if role != "" {
			path += "?role=" + url.QueryEscape(role)
		}
		err := a.call(http.MethodGet, path, nil, &out)
		return out.Items, err
	}
	var rows []api.AccountView
	err := a.withStore(func(st store.Store) error {
		var err error
		rows, err = api.ListACMEAccounts(context.Background(), st.(store.ACMEStore), role)
		return err
	})
	return rows, err
}

// revokeAccount ends an ACME account through the running server, or on
// the store.
func (a *admin) revokeAccount(id string) error {
	if a.client != nil {
		return a.call(http.MethodPost, "/acme-accounts/"+url.PathEscape(id)+"/revoke", nil, nil)
	}
	return a.withStore(func(st store.Store) error {
		acct, err := api.RevokeACMEAccount(context.Background(), st.(store.ACMEStore), id)
		if err != nil {
			return err
		}
		a.withdrew(acct.Role, api.WithdrawnAccount, acct.ID)
		return nil
	})
}

// revoke revokes through the running server, or offline on the store with
// the CA loaded (the next `serve` signs a CRL that lists it at start). It
// returns the serial and the other certificates of the key that a
// keyCompromise revocation revoked with it.
func (a *admin) revoke(serial, reason string) (string, []string, error) {
	if a.client != nil {
		var v api.CertView
		err := a.call(http.MethodPost, "/revoke", map[string]string{"serial": serial, "reason": reason}, &v)
		return v.Serial, v.AlsoRevoked, err
	}
	var sn string
	var also []string
	err := a.withStore(func(st store.Store) error {
		root, inter, key, err := api.LoadCA(a.cfg)
		if err != nil {
			return err
		}
		defer api.CloseKey(key)
		auth, err := ca.New(ca.Deps{Root: root, Intermediate: inter, Signer: key, Roles: a.cfg.Roles, Store: st})
		if err != nil {
			return err
		}
		rec, sameKey, err := auth.Revoke(context.Background(), serial, reason)
		if err != nil {
			return errors.New(errs.DetailOf(err))
		}
		a.offlineAudit(func(ctx context.Context, log *slog.Logger) {
			audit.Log(ctx, log, audit.Entry{Event: "revoke", Requester: api.OfflineRequester, Role: rec.Role, Names: rec.Names, Outcome: "revoked", Serial: rec.Serial, Reason: rec.Reason})
			audit.SameKey(ctx, log, api.OfflineRequester, rec.Serial, sameKey)
		})
		sn = rec.Serial
		for _, r := range sameKey {
			also = append(also, r.Serial)
		}
		return nil
	})
	return sn, also, err
}

// reapplyCRLs puts back the revocations each CRL in ders lists that the
// store lost (ca.Authority.ReapplyCRL), through the running server, or
// offline on the store with the CA's intermediates, current and retired,
// loaded. each is told of every CRL in turn.
func (a *admin) reapplyCRLs(ders [][]byte, stderr io.Writer, each func(api.ReappliedView, error)) error {
	if a.client != nil {
		// A long CRL whose revocations were all lost (~0.1 ms an entry,
		// BenchmarkReapplyCRL) may take more than the other admin calls'
		// 30 s.
		long := *a.client
		long.Timeout = 0
		for _, der := range ders {
			var v api.ReappliedView
			err := a.send(&long, http.MethodPost, "/reapply-crl", "application/pkix-crl", der, &v)
			each(v, err)
		}
		return nil
	}
	return a.withAuthority(stderr, func(auth *ca.Authority) error {
		for _, der := range ders {
			got, err := auth.ReapplyCRL(context.Background(), der)
			var v api.ReappliedView
			if got != nil {
				v = api.NewReappliedView(got)
				a.offlineAudit(func(ctx context.Context, log *slog.Logger) { api.AuditReapplied(ctx, log, api.OfflineRequester, got) })
			}
			if err != nil {
				err = errors.New(errs.DetailOf(err))
			}
			each(v, err)
		}
		return nil
	})
}

// withAuthority is withStore with the CA over the store, its
// intermediates, current and retired, loaded: for the offline commands
// that check certificates and CRLs against them.
func (a *admin) withAuthority(stderr io.Writer, fn func(*ca.Authority) error) error {
	return a.withStore(func(st store.Store) error {
		root, inter, key, err := api.LoadCA(a.cfg)
		if err != nil {
			return err
		}
		defer api.CloseKey(key)
		retired, err := api.RetiredCerts(a.cfg, root, time.Now(), slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			return err
		}
		auth, err := ca.New(ca.Deps{Root: root, Intermediate: inter, Signer: key, Roles: a.cfg.Roles, Store: st, Retired: retired})
		if err != nil {
			return err
		}
		return fn(auth)
	})
}

// adopt records each certificate in ders under role (ca.Authority.Adopt),
// through the running server, or offline on the store. each is told of
// every one in turn.
func (a *admin) adopt(ders [][]byte, role string, viaACME bool, stderr io.Writer, each func(api.AdoptedView, error)) error {
	if a.client != nil {
		for _, der := range ders {
			var v api.AdoptedView
			err := a.call(http.MethodPost, "/adopt", api.AdoptBody{DER: der, Role: role, ACME: viaACME}, &v)
			each(v, err)
		}
		return nil
	}
	return a.withAuthority(stderr, func(auth *ca.Authority) error {
		for _, der := range ders {
			got, err := auth.Adopt(context.Background(), der, role, api.OfflineRequester, viaACME)
			if err != nil {
				each(api.AdoptedView{}, errors.New(errs.DetailOf(err)))
				continue
			}
			a.offlineAudit(func(ctx context.Context, log *slog.Logger) { api.AuditAdopted(ctx, log, api.OfflineRequester, got) })
			each(api.NewAdoptedView(got, time.Now()), nil)
		}
		return nil
	})
}
