package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
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
					kid, key, err = api.CreateEAB(context.Background(), eab, cfg.Roles[role], role)
					return err
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
	return group("acme", "ACME administration", group("eab", "external account bindings", create))
}
