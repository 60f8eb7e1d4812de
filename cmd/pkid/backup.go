package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/internal/atomicfile"
	"pkid/internal/audit"
	"pkid/store"
)

func backupCmd() *cobra.Command {
	var cfgPath, dir, out string
	c := &cobra.Command{
		Use:   "backup --config D/pkid.yaml --out FILE",
		Short: "write a consistent copy of the store, whether or not serve is running",
		Long: `backup copies the store as it stood at one instant, through the running
server's admin socket (issuance goes on meanwhile) or, with no server
running, directly. The copy is checked page by page before it replaces
FILE (mode 0600: it holds token hashes and sealed EAB keys). To restore,
stop pkid serve and run pkid restore --from FILE.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch fi, err := os.Stat(out); {
			case out == "":
				return usagef("--out FILE is required")
			case out == "-":
				// A copy is checked before it is written anywhere, so it
				// cannot stream; a file named "-" is not what was meant.
				return usagef("--out -: a backup is checked whole before it is written, so it goes to a file; pipe that file on afterwards (gzip, ssh)")
			case err == nil && fi.IsDir():
				return usagef("--out %s is a directory; name a file in it, e.g. %s", out, filepath.Join(out, "pkid-"+time.Now().Format("2006-01-02")+".db"))
			}
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			live := cfg.Resolve(cfg.Storage.Path)
			if sameFile(out, live) {
				return usagef("--out %s is the live store itself", out)
			}
			n, certs, err := newAdmin(cfg).backup(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "backup: %d bytes, %d certificate records, checked, written to %s\nrestore: stop pkid serve, then pkid restore --config %s --from %s\n", n, certs, out, cfg.Path, out)
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	c.Flags().StringVar(&dir, "dir", "", "CA directory")
	c.Flags().StringVar(&out, "out", "", "file to write the copy to (replaced only once the copy is whole and checked)")
	return c
}

// sameFile reports whether a and b name one file (or the same path, when
// a does not exist yet).
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	absA, _ := filepath.Abs(a)
	absB, _ := filepath.Abs(b)
	return absA == absB
}

// backup streams the store into path through the admin socket or the
// store itself, and checks the copy before it replaces path.
func (a *admin) backup(path string) (n int64, certs int, err error) {
	write := func(w io.Writer) error {
		if a.client == nil {
			return a.withStore(func(st store.Store) error {
				b, ok := st.(store.Backuper)
				if !ok {
					return fmt.Errorf("this store (%T) makes no backups; use the database's own tools", st)
				}
				var err error
				n, err = b.Backup(context.Background(), w)
				return err
			})
		}
		cl := *a.client
		cl.Timeout = 0 // a large store takes longer than an admin call
		resp, err := cl.Get("http://pkid/backup")
		if err != nil {
			return fmt.Errorf("admin socket: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var p api.Problem
			if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p) == nil && p.Detail != "" {
				return fmt.Errorf("admin socket: %s", p.Detail)
			}
			return fmt.Errorf("admin socket: HTTP %d", resp.StatusCode)
		}
		if n, err = io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("backup cut short after %d bytes: %w", n, err)
		}
		if got, want := resp.Trailer.Get(api.BackupTrailer), fmt.Sprintf("ok %d", n); got != want {
			return fmt.Errorf("backup cut short after %d bytes: the server says %q", n, got)
		}
		return nil
	}
	check := func(tmp string) error {
		var err error
		certs, err = store.CheckBackup(tmp)
		return err
	}
	if err := atomicfile.WriteFrom(path, 0o600, write, check); err != nil {
		return 0, 0, fmt.Errorf("backup to %s (nothing replaced): %w", path, err)
	}
	if a.client == nil { // serve logs its own
		a.offlineAudit(func(ctx context.Context, log *slog.Logger) {
			audit.Log(ctx, log, audit.Entry{Event: "backup", Requester: api.OfflineRequester, Outcome: "accepted"}, "bytes", n)
		})
	}
	return n, certs, nil
}
