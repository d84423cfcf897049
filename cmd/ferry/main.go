package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks an error as the caller's mistake (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// runError marks an error returned by a command's own work (exit 1 even
// when its text happens to read like one of cobra's usage errors: a portal
// "accepts only files ending in .mov").
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// markRunErrors wraps every command's RunE so that its errors, other than
// usage errors, are runErrors.
func markRunErrors(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				return runError{err}
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// usagef returns an error that makes ferry exit with code 2.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// commands is filled by each command's file in its init function, so that
// commands live beside their own code and main.go never needs editing.
var commands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Receive huge media through upload portals and deliver it into iconik",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var subs []*cobra.Command
	for _, c := range commands {
		subs = append(subs, c())
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
	root.AddCommand(subs...)
	markRunErrors(root)
	return root
}

func main() {
	os.Exit(profiled(func() int { return run(os.Args[1:]) }))
}

// profiled runs fn with a CPU profile written to $FERRY_CPUPROFILE when it is
// set: how bench/ingest and bench/serve find where a command spends its time.
func profiled(fn func() int) int {
	path := os.Getenv("FERRY_CPUPROFILE")
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry: FERRY_CPUPROFILE:", err)
		return fn()
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "ferry: FERRY_CPUPROFILE:", err)
		return fn()
	}
	defer pprof.StopCPUProfile()
	return fn()
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "ferry:", err)
	var ue usageError
	var re runError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &re):
		return exitFailed
	case isCobraUsage(err):
		return exitUsage
	}
	return exitFailed
}

// isCobraUsage recognises cobra's own argument errors (unknown command, wrong
// number of args), which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "accepts ", "requires at least", "requires at most", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
