package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry/internal/config"
)

//go:generate go run . gen-config-doc ../../docs/config.md

// configDocCommand regenerates docs/config.md from the flag definitions. It is
// hidden: only `go generate ./cmd/ferry` (and the test that fails when the
// file is stale) use it.
func init() {
	commands = append(commands, func() *cobra.Command {
		return &cobra.Command{
			Use:    "gen-config-doc FILE",
			Short:  "Write the configuration reference (docs/config.md) generated from every command's flags",
			Hidden: true,
			Args:   cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return os.WriteFile(args[0], []byte(configDoc(newRootCmd())), 0o644)
			},
		}
	})
}

// configDocHeader says where the file comes from; the staleness test quotes
// the same command.
const configDocRegen = "go generate ./cmd/ferry"

// configDoc renders the reference: the shared settings once (flag,
// variable, default, meaning), then each command's own flags. Defaults are
// the out-of-the-box ones, never the generating machine's environment.
func configDoc(root *cobra.Command) string {
	settings := config.Describe()
	byFlag := map[string]config.Described{}
	for _, d := range settings {
		byFlag[d.Flag] = d
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# ferry configuration reference\n\n")
	w("<!-- Generated from the flag definitions by `%s`; do not edit by hand. -->\n\n", configDocRegen)
	w("Every setting of `ferry serve` is a flag and a `FERRY_*` environment variable. A flag given on the\n")
	w("command line wins over the environment, which wins over the default. Secrets are better given in the\n")
	w("environment (or a systemd credential / Docker secret exported to it): a flag shows in the process list.\n")
	w("Durations are written like `90s`, `2h` or `168h`; sizes like `16TiB`, `500GB` or a number of bytes.\n\n")

	w("## Server settings\n\n")
	w("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, d := range settings {
		flag := "`--" + d.Flag + "`"
		if d.EnvOnly {
			flag = "(environment only)"
		}
		w("| %s | `%s` | %s | %s |\n", flag, d.Env, code(d.Default), cell(d.Usage))
	}
	w("\n")

	w("## Commands\n\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			commandDoc(&b, sub, byFlag)
			walk(sub)
		}
	}
	walk(root)

	w("## Other environment variables\n\n")
	w("| variable | read by | meaning |\n|---|---|---|\n")
	for _, e := range config.OtherEnv {
		w("| `%s` | %s | %s |\n", e.Name, e.ReadBy, cell(e.Meaning))
	}
	return b.String()
}

// commandDoc writes one command's section: which server settings it takes
// and a table of its own flags.
func commandDoc(b *strings.Builder, c *cobra.Command, settings map[string]config.Described) {
	fmt.Fprintf(b, "### `%s`\n\n%s.\n\n", c.CommandPath(), strings.TrimSuffix(strings.TrimSpace(c.Short), "."))
	var shared []string
	var own []*pflag.Flag
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		if d, ok := settings[f.Name]; ok && strings.HasSuffix(f.Usage, "["+d.Env+"]") {
			shared = append(shared, "`--"+f.Name+"`")
			return
		}
		own = append(own, f)
	})
	switch {
	case len(shared) > 0 && len(shared) == countFlags(settings):
		fmt.Fprintf(b, "Takes every server setting above.\n\n")
	case len(shared) > 0:
		fmt.Fprintf(b, "Server settings it takes: %s.\n\n", strings.Join(shared, ", "))
	}
	if c.HasParent() && c.Parent().HasParent() && c.Parent().HasPersistentFlags() {
		fmt.Fprintf(b, "Also takes the flags of `%s`.\n\n", c.Parent().CommandPath())
	}
	if len(own) == 0 {
		return
	}
	fmt.Fprintf(b, "| flag | default | meaning |\n|---|---|---|\n")
	for _, f := range own {
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := f.DefValue
		if f.Value.Type() == "bool" && def == "false" {
			def = ""
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, code(def), cell(f.Usage))
	}
	fmt.Fprintf(b, "\n")
}

// countFlags counts the settings that are flags (secrets are environment only).
func countFlags(settings map[string]config.Described) int {
	n := 0
	for _, d := range settings {
		if !d.EnvOnly {
			n++
		}
	}
	return n
}

// code shows a default as code, or a dash when there is none.
func code(s string) string {
	if s == "" {
		return "–"
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// cell makes help text safe inside a Markdown table cell: a pipe would end
// the cell and <data> would read as an HTML tag.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ").Replace(s)
}
