package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
)

func tokenCmd() *cobra.Command {
	var cfgPath, dir string
	var o api.TokenOptions
	var names string
	create := &cobra.Command{
		Use:   "create --config D/pkid.yaml --role R",
		Short: "create an API token; prints it alone on stdout",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if names != "" {
				o.Names = strings.Split(names, ",")
			}
			if err := api.ValidateTokenOptions(o); err != nil {
				return usageError{err} // flags that make no token
			}
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			ad := newAdmin(cfg)
			tok, err := ad.createToken(o)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(c.OutOrStdout(), tok); err != nil {
				// Nobody has the secret now (pkid keeps only its hash): the
				// token can never be used, so it goes rather than linger in
				// the list with its roles.
				id, _, _ := strings.Cut(tok, ".")
				if derr := ad.deleteToken(id); derr != nil {
					return fmt.Errorf("token %s was created but could not be printed (%w), and revoking it failed (%v): revoke it (pkid token revoke %s)", id, err, derr, id)
				}
				return fmt.Errorf("token %s could not be printed (%w), so it was revoked: nobody had its secret", id, err)
			}
			fmt.Fprintln(c.ErrOrStderr(), "note: the token is shown only once; pkid keeps only its SHA-256")
			return nil
		},
	}
	fl := create.Flags()
	fl.StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	fl.StringVar(&dir, "dir", "", "CA directory")
	fl.StringArrayVar(&o.Roles, "role", nil, "role the token may use (repeatable)")
	durationFlag(create, &o.TTL, "ttl", 0, "lifetime (default 720h; 10m with --once)")
	fl.BoolVar(&o.Admin, "admin", false, "may revoke, list and manage tokens")
	fl.StringVar(&o.Name, "name", "", "name shown in audit logs")
	fl.BoolVar(&o.Once, "once", false, "single-use enrollment token bound to --names")
	fl.StringVar(&names, "names", "", "comma-separated names an enrollment token is bound to")

	var lcfg, ldir string
	list := &cobra.Command{
		Use:   "list --config D/pkid.yaml",
		Short: "list tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(lcfg, ldir)
			if err != nil {
				return err
			}
			rows, err := newAdmin(cfg).listTokens()
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%-16s  %-20s  %-24s  %-5s  %-20s  %-7s  %s\n", "ID", "NAME", "ROLES", "ADMIN", "EXPIRES", "STATE", "CREATED_BY")
			for _, r := range rows {
				state := "active"
				switch {
				case !r.UsedAt.IsZero():
					state = "used"
				case time.Now().After(r.ExpiresAt):
					state = "expired"
				}
				// No creator: made before pkid recorded it.
				fmt.Fprintf(w, "%-16s  %-20s  %-24s  %-5v  %-20s  %-7s  %s\n", r.ID, r.Name, strings.Join(r.Roles, ","), r.Admin, r.ExpiresAt.Format(time.RFC3339), state, orDash(r.CreatedBy))
			}
			return nil
		},
	}
	list.Flags().StringVar(&lcfg, "config", "", "path of pkid.yaml")
	list.Flags().StringVar(&ldir, "dir", "", "CA directory")

	var rcfg, rdir string
	revoke := &cobra.Command{
		Use:   "revoke --config D/pkid.yaml ID",
		Short: "revoke (delete) a token by id",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadConfig(rcfg, rdir)
			if err != nil {
				return err
			}
			id, _, _ := strings.Cut(args[0], ".") // accept the whole token too
			ad := newAdmin(cfg)
			if err := ad.deleteToken(id); err != nil {
				return err
			}
			fmt.Fprintln(c.ErrOrStderr(), "token "+id+" revoked")
			// An admin token that leaked may have made tokens of its own:
			// name those still there, which its revocation leaves working.
			if rows, err := ad.listTokens(); err == nil {
				for _, r := range rows {
					if r.CreatedBy == "token:"+id {
						fmt.Fprintf(c.ErrOrStderr(), "note: token %s (%s) was made by it and still works; if %s leaked, revoke that one too\n", r.ID, r.Name, id)
					}
				}
			}
			return nil
		},
	}
	revoke.Flags().StringVar(&rcfg, "config", "", "path of pkid.yaml")
	revoke.Flags().StringVar(&rdir, "dir", "", "CA directory")
	return group("token", "manage API tokens", create, list, revoke)
}
