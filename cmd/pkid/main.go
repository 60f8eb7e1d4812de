// Command pkid is the whole product in one binary: the CA server, its
// administration and its client.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
)

// usageError marks bad usage (exit 2) as opposed to a failure (exit 1).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	stopProfiles := startProfiles()
	err := newRoot().Execute()
	// Before any os.Exit, which skips deferred calls.
	stopProfiles()
	if err == nil {
		return
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintln(os.Stderr, "pkid: "+msg)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") || strings.Contains(err.Error(), "required flag") || strings.Contains(err.Error(), "accepts ") {
		os.Exit(2)
	}
	os.Exit(1)
}

// startProfiles starts what the environment asks for and returns what ends
// it. PKID_CPUPROFILE=file records a CPU profile of any command (serve,
// bench), for finding where a benchmark's time goes; PKID_MEMPROFILE=file
// writes the allocation profile when the command ends (go tool pprof
// -sample_index=alloc_space), for finding what a request allocates.
func startProfiles() func() {
	var stops []func()
	if p := os.Getenv("PKID_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) != nil {
			f.Close()
		} else if err == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("PKID_MEMPROFILE"); p != "" {
		stops = append(stops, func() { writeMemProfile(p) })
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

func writeMemProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkid: memory profile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "pkid: memory profile:", err)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "pkid",
		Short:         "pkid: an internal certificate authority",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("pkid {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(initCmd(), serveCmd(), tokenCmd(), caCmd(), certCmd(), configCmd(), acmeCmd(), benchCmd(), backupCmd(), restoreCmd(), versionCmd())
	return root
}

// group makes a parent command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error {
		return usagef("%s needs a subcommand: %s", use, strings.Join(subNames(c), ", "))
	}}
	c.AddCommand(subs...)
	return c
}

func subNames(c *cobra.Command) []string {
	var n []string
	for _, s := range c.Commands() {
		n = append(n, s.Name())
	}
	return n
}
