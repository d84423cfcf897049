package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasAOneLinePurpose walks every registered command (subcommands too): each has
// a one-line Short, and `ferry --help` lists every top-level command with it.
func TestEveryCommandHasAOneLinePurpose(t *testing.T) {
	root := newRootCmd()
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			seen++
			short := strings.TrimSpace(sub.Short)
			if short == "" || strings.Contains(sub.Short, "\n") {
				t.Errorf("command %q: Short %q is not a one-line purpose", sub.CommandPath(), sub.Short)
			}
			walk(sub)
		}
	}
	walk(root)
	if seen < len(commands) {
		t.Fatalf("walked %d commands, fewer than the %d registered", seen, len(commands))
	}

	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatalf("ferry --help: %v", err)
	}
	help := out.String()
	for _, newCmd := range commands {
		c := newCmd()
		if c.Hidden {
			continue
		}
		line := ""
		for l := range strings.SplitSeq(help, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == c.Name() {
				line = l
				break
			}
		}
		if line == "" || !strings.Contains(line, strings.TrimSpace(c.Short)) {
			t.Errorf("ferry --help does not list %q with its purpose %q:\n%s", c.Name(), c.Short, help)
		}
	}
}
