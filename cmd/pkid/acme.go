package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/audit"
	"pkid/store"
)

func acmeCmd() *cobra.Command {
	var cfgPath, dir, role string
	create := &cobra.Command{
		Use:   "create --config D/pkid.yaml --role R",
		Short: `make an external account binding key; prints "KID HMAC" on one line`,
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			ad := newAdmin(cfg)
			var kid, key string
			if ad.client != nil {
				var out struct{ KID, HMAC string }
				if err := ad.call(http.MethodPost, "/eab", map[string]string{"role": role}, &out); err != nil {
					return err
				}
				kid, key = out.KID, out.HMAC
			} else {
				err = ad.withStore(func(st store.Store) error {
					eab, err := api.NewEAB(cfg, st.(store.ACMEStore), ca.SystemClock{})
					if err != nil {
						return err
					}
					if kid, key, err = api.CreateEAB(context.Background(), eab, cfg.Roles[role], role); err != nil {
						return err
					}
					ad.offlineAudit(func(ctx context.Context, log *slog.Logger) {
						audit.Log(ctx, log, audit.Entry{Event: "acme.eab.create", Requester: api.OfflineRequester, Role: role, Outcome: "accepted"}, "kid", kid)
					})
					return nil
				})
				if err != nil {
					return err
				}
			}
			if _, err := fmt.Fprintf(c.OutOrStdout(), "%s %s\n", kid, key); err != nil {
				return fmt.Errorf("external account binding %s was created but could not be printed (%w); nobody has its key: create another", kid, err)
			}
			fmt.Fprintln(c.ErrOrStderr(), "note: single use; e.g. certbot --eab-kid KID --eab-hmac-key HMAC")
			return nil
		},
	}
	create.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	create.Flags().StringVar(&dir, "dir", "", "CA directory")
	create.Flags().StringVar(&role, "role", "", "role whose ACME directory the binding is for")
	create.MarkFlagRequired("role")
	return group("acme", "ACME administration", group("eab", "external account bindings", create, eabListCmd(), eabRevokeCmd()),
		group("account", "ACME accounts", accountListCmd(), accountRevokeCmd()))
}

func accountListCmd() *cobra.Command {
	var cfgPath, dir, role string
	c := &cobra.Command{
		Use:   "list --config D/pkid.yaml [--role R]",
		Short: "list ACME accounts, oldest first (never their keys)",
		Long: `Lists the ACME accounts, oldest first, one line each: ID (as the audit
log's requester acme:ID names it), role, status (valid, deactivated by its
client, revoked by the operator), created, the external account binding it
registered with, the client address it registered from (an IPv6 one's /64;
what acme.new_accounts counts), and its contact.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			rows, err := newAdmin(cfg).listAccounts(role)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			const row = "%-26s  %-12s  %-11s  %-20s  %-24s  %-20s  %s\n"
			fmt.Fprintf(w, row, "ID", "ROLE", "STATUS", "CREATED", "EAB", "FROM", "CONTACT")
			for _, r := range rows {
				fmt.Fprintf(w, row, r.ID, r.Role, r.Status, r.CreatedAt.UTC().Format(time.RFC3339), orDash(r.EABKeyID), orDash(r.Source), strings.Join(r.Contact, ","))
			}
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	c.Flags().StringVar(&dir, "dir", "", "CA directory")
	c.Flags().StringVar(&role, "role", "", "only this role's")
	return c
}

func accountRevokeCmd() *cobra.Command {
	return adminActionCmd("revoke --config D/pkid.yaml ACCOUNT",
		"end an ACME account (its key leaked, its client retired): it may order, revoke or change key no more",
		`Ends an ACME account from the CA's side (RFC 8555 "revoked"): every
request signed for it is refused, its valid authorizations with it, and its
key registers no other account in the role. ACCOUNT is the ID the audit
log names (requester acme:ACCOUNT) and eab list shows. Its certificates stay
valid; list and revoke them with

  pkid cert list --config D/pkid.yaml --requester acme:ACCOUNT --status valid`,
		(*admin).revokeAccount, "ACME account %s revoked\n")
}

// adminActionCmd is an admin command that does one thing to the object
// its one argument names, through the running server or on the store,
// and says so with done (a format taking the argument).
func adminActionCmd(use, short, long string, do func(*admin, string) error, done string) *cobra.Command {
	var cfgPath, dir string
	c := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			if err := do(newAdmin(cfg), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), done, args[0])
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	c.Flags().StringVar(&dir, "dir", "", "CA directory")
	return c
}

func eabListCmd() *cobra.Command {
	var cfgPath, dir string
	c := &cobra.Command{
		Use:   "list --config D/pkid.yaml",
		Short: "list external account binding keys, used or not (never their HMAC keys)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			rows, err := newAdmin(cfg).listEAB()
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%-24s  %-12s  %-20s  %s\n", "KID", "ROLE", "CREATED", "STATE")
			for _, r := range rows {
				state := "unused"
				if !r.UsedAt.IsZero() {
					state = "used " + r.UsedAt.UTC().Format(time.RFC3339) + " by account " + r.AccountID
				}
				fmt.Fprintf(w, "%-24s  %-12s  %-20s  %s\n", r.KID, r.Role, r.CreatedAt.UTC().Format(time.RFC3339), state)
			}
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	c.Flags().StringVar(&dir, "dir", "", "CA directory")
	return c
}

func eabRevokeCmd() *cobra.Command {
	return adminActionCmd("revoke --config D/pkid.yaml KID",
		"withdraw an external account binding key nobody has used (one that leaked, or was made for the wrong role)", "",
		(*admin).revokeEAB, "external account binding key %s withdrawn\n")
}

// orDash is s, or "-" for a column of a listing that has nothing to show
// (a field pkid did not record when the object was made).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
