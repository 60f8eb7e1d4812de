package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/policies"
	"pkid/store"
)

// listLine is a line of `pkid cert list`, streamed page by page, so its
// columns are as wide as their longest usual values: "revoked
// (cessationOfOperation)", and an mTLS renewal's requester, "mtls:" and a
// 40-digit serial. A longer role or requester pushes its line's names on.
const listLine = "%-40s  %-30s  %-20s  %-12s  %-45s  %s\n"

func certListCmd() *cobra.Command {
	var cfgPath, dir, role, status, name, requester string
	var limit int
	c := &cobra.Command{
		Use:   "list --config D/pkid.yaml [--role R] [--status valid|revoked|expired] [--name N] [--requester R] [--limit N]",
		Short: "list the certificates this CA issued, oldest first (on the CA host)",
		Long: `Lists the certificate records, oldest first, one line each: serial,
status (a revoked one with its reason), notAfter, role, requester (who
asked, as the audit log names them) and names. Through
the running server's admin socket, or on the store when serve is stopped;
GET /v1/certs with an admin token gives the same from anywhere.

--name lists the certificates that carry that name (a DNS name, an IP
address, a URI or a mailbox; "Web1.Internal." finds web1.internal), as
when a host is retired or its key leaks:

  pkid cert list --config D/pkid.yaml --name web1.internal --status valid

--requester lists what one requester got, named as in the audit log
(token:NAME, acme:ACCOUNT, enroll:NAME, oidc:SUBJECT), as when a token
leaks, and every mTLS renewal of those (a renewal's own requester is
mtls:SERIAL, the certificate it renewed, which finds only its successors):

  pkid cert list --config D/pkid.yaml --requester token:ci-main --status valid`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch status {
			case "", "valid", "revoked", "expired":
			default:
				return usagef("--status %q: want valid, revoked or expired", status)
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			// The header goes out with the first line, or after an empty
			// listing: never above an error (a store that cannot be read).
			headed := false
			header := func() {
				if !headed {
					headed = true
					fmt.Fprintf(w, listLine, "SERIAL", "STATUS", "NOT_AFTER", "ROLE", "REQUESTER", "NAMES")
				}
			}
			f := store.ListFilter{Role: role, Status: status, Requester: requester}
			if name != "" {
				f.Name = policies.RecordedName(name)
			}
			err = newAdmin(cfg).listCerts(f, limit, func(v api.CertView) {
				header()
				st := v.Status
				if v.Reason != "" {
					st += " (" + v.Reason + ")"
				}
				fmt.Fprintf(w, listLine, v.Serial, st, v.NotAfter.UTC().Format(time.RFC3339), v.Role, v.Requester, strings.Join(v.Names, ","))
			})
			if err == nil {
				header()
			}
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	fl.StringVar(&dir, "dir", "", "CA directory")
	fl.StringVar(&role, "role", "", "only this role's")
	fl.StringVar(&status, "status", "", "only valid, revoked or expired ones")
	fl.StringVar(&name, "name", "", "only those that carry this name")
	fl.StringVar(&requester, "requester", "", "only those this requester got, and their renewals, as the audit log names it (token:NAME, acme:ACCOUNT, enroll:NAME, oidc:SUBJECT, mtls:SERIAL)")
	fl.IntVar(&limit, "limit", 0, "at most this many (default all)")
	return c
}

// listCerts hands each record f selects to fn, oldest first, at most
// limit (0: all), a page at a time: through the admin socket as GET
// /v1/certs answers, or from the store.
func (a *admin) listCerts(f store.ListFilter, limit int, fn func(api.CertView)) error {
	if a.client != nil {
		return pages(f, limit, fn, func(f store.ListFilter) ([]api.CertView, string, error) {
			q := url.Values{"limit": {strconv.Itoa(f.Limit)}}
			for k, v := range map[string]string{"role": f.Role, "status": f.Status, "name": f.Name, "requester": f.Requester, "cursor": f.Cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var out struct {
				Items      []api.CertView `json:"items"`
				NextCursor string         `json:"next_cursor"`
			}
			err := a.call(http.MethodGet, "/certs?"+q.Encode(), nil, &out)
			return out.Items, out.NextCursor, err
		})
	}
	return a.withStore(func(st store.Store) error {
		return pages(f, limit, fn, func(f store.ListFilter) ([]api.CertView, string, error) {
			f.Now = time.Now()
			recs, next, err := st.ListCertificates(context.Background(), f)
			items := make([]api.CertView, 0, len(recs))
			for _, rec := range recs {
				items = append(items, api.CertView{Serial: rec.Serial, Role: rec.Role, Names: rec.Names, NotAfter: rec.NotAfter,
					Status: store.EffectiveStatus(rec, f.Now), Reason: rec.Reason,
					Requester: rec.Requester, AuthorizedBy: rec.AuthorizedBy})
			}
			return items, next, err
		})
	})
}

// pages calls fetch for pages of at most 1,000 records, following each
// next cursor, until limit records (0: all) have gone to fn.
func pages(f store.ListFilter, limit int, fn func(api.CertView), fetch func(store.ListFilter) ([]api.CertView, string, error)) error {
	for left := limit; ; {
		f.Limit = 1000
		if limit > 0 && left < 1000 {
			f.Limit = left
		}
		items, next, err := fetch(f)
		if err != nil {
			return err
		}
		for _, v := range items {
			fn(v)
		}
		left -= len(items)
		if next == "" || (limit > 0 && left <= 0) {
			return nil
		}
		f.Cursor = next
	}
}
