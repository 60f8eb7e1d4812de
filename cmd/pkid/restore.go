package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/internal/atomicfile"
	"pkid/internal/audit"
	"pkid/store"
)

func restoreCmd() *cobra.Command {
	var cfgPath, dir, from string
	c := &cobra.Command{
		Use:   "restore --config D/pkid.yaml --from FILE",
		Short: "put a backup in the store's place, with serve stopped",
		Long: `restore checks a backup (pkid backup) page by page and puts it in the
store's place, keeping the store it replaces beside it as
pkid.db.replaced-<time>. It refuses while pkid serve runs: a store replaced
under a running serve is corrupted. The next serve puts back the
revocations and withdrawals made since the backup from its CRL copies and
journal beside the store; on a new machine, run pkid cert revoke --config
--from-crl with a relying party's copy of the CRL first.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if from == "" {
				return usagef("--from FILE is required: a backup pkid backup wrote")
			}
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			live := cfg.Resolve(cfg.Storage.Path)
			if sameFile(from, live) {
				return usagef("--from %s is the live store itself", from)
			}
			if newAdmin(cfg).client != nil {
				return fmt.Errorf("pkid serve is running on %s (its admin socket answers): stop it first; a store replaced under a running serve is corrupted", live)
			}
			if storeInUse(live) {
				return fmt.Errorf("another process holds the lock of %s (a pkid serve, or an admin command working on it): stop it first; a store replaced under it is corrupted", live)
			}
			certs, err := store.CheckBackup(from)
			if err != nil {
				return fmt.Errorf("%s is not a whole store (nothing replaced): %w", from, err)
			}
			kept, err := restoreStore(from, live)
			if err != nil {
				return err
			}
			(&admin{cfg: cfg}).offlineAudit(func(ctx context.Context, log *slog.Logger) {
				audit.Log(ctx, log, audit.Entry{Event: "restore", Requester: api.OfflineRequester, Outcome: "accepted"}, "from", from, "certificates", certs, "replaced_kept_as", kept)
			})
			w := c.ErrOrStderr()
			fmt.Fprintf(w, "restored %s from %s (%d certificate records, checked)\n", live, from, certs)
			if kept != "" {
				fmt.Fprintf(w, "the store it replaced is kept as %s\n", kept)
			}
			if _, err := os.Stat(api.CRLCopyDir(cfg)); err == nil {
				fmt.Fprintf(w, "next: start pkid serve; it puts back the revocations and withdrawals made since the backup from the CRL copies and journal in %s\n", filepath.Dir(live))
			} else {
				fmt.Fprintf(w, "next: no CRL copies in %s (a new machine?): put back the revocations made since the backup with pkid cert revoke --config %s --from-crl FILE (a relying party's copy of /crl/bundle.pem), then start pkid serve\n", filepath.Dir(live), cfg.Path)
			}
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	c.Flags().StringVar(&dir, "dir", "", "CA directory")
	c.Flags().StringVar(&from, "from", "", "the backup to restore")
	return c
}

// restoreStore copies the backup from into live's place: staged beside
// it, checked again there, given the owner of live's directory (restore
// runs as root, serve under its own user), then renamed over it, so that a
// copy cut short replaces nothing. The store it replaces is kept, by a
// hard link made first, as live.replaced-<time>; its name is returned ("" when
// there was none).
func restoreStore(from, live string) (string, error) {
	var kept string
	if _, err := os.Stat(live); err == nil {
		stamp := live + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		for i := 0; ; i++ {
			kept = stamp
			if i > 0 {
				kept = fmt.Sprintf("%s-%d", stamp, i)
			}
			err = os.Link(live, kept)
			if !errors.Is(err, os.ErrExist) || i == 99 {
				break
			}
		}
		if err != nil {
			return "", fmt.Errorf("keep the store being replaced (nothing replaced): %w", err)
		}
	}
	src, err := os.Open(from)
	if err != nil {
		return "", err
	}
	defer src.Close()
	err = atomicfile.WriteFrom(live, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	}, func(tmp string) error {
		if _, err := store.CheckBackup(tmp); err != nil {
			return err
		}
		return api.SameOwnerAs(tmp, filepath.Dir(live))
	})
	if err != nil {
		if kept != "" {
			os.Remove(kept) // live is as it was
		}
		return "", fmt.Errorf("restore %s (nothing replaced): %w", live, err)
	}
	return kept, nil
}
