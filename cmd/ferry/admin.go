package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/server"
)

func init() { commands = append(commands, newAdminCmd) }

func newAdminCmd() *cobra.Command {
	cfg, envErr := config.Load(os.LookupEnv)
	admin := &cobra.Command{
		Use:   "admin",
		Short: "Manage admin users and API tokens",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if envErr != nil {
				return usageError{envErr}
			}
			return nil
		},
	}
	cfg.BindFlags(admin.PersistentFlags(), "data", "database-url", "log-level")

	var email, passwordFile string
	createUser := &cobra.Command{
		Use:   "create-user --email EMAIL [--password-file FILE|-]",
		Short: "Create an admin user (password read from a file, stdin with -, or prompted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" {
				return usagef("--email is required")
			}
			pw, err := readPassword(cmd, passwordFile)
			if err != nil {
				return err
			}
			u, err := server.CreateUser(cmd.Context(), cfg, email, pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created user %s (%s)\n", u.Email, u.ID)
			return nil
		},
	}
	createUser.Flags().StringVar(&email, "email", "", "the user's email address (required)")
	createUser.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password, or - for standard input")

	var tokEmail, tokName, tokExpires string
	createToken := &cobra.Command{
		Use:   "create-token --email EMAIL [--name NAME] [--expires DURATION]",
		Short: "Create an API token for a user; it is printed once and stored only hashed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokEmail == "" {
				return usagef("--email is required")
			}
			var ttl time.Duration
			if tokExpires != "" {
				d, err := time.ParseDuration(tokExpires)
				if err != nil || d <= 0 {
					return usagef("--expires must be a positive duration like 720h (30 days) or 90m, not %q", tokExpires)
				}
				ttl = d
			}
			tok, row, err := server.CreateExpiringAPIToken(cmd.Context(), cfg, tokEmail, tokName, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			until := "it works until revoked (`ferry admin revoke-token " + row.ID + "`)"
			if row.ExpiresAt != nil {
				until = "it expires at " + row.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "ferry: token %s (%q) is shown once; store it now (use it as Authorization: Bearer <token>); %s\n",
				row.ID, row.Name, until)
			return nil
		},
	}
	createToken.Flags().StringVar(&tokEmail, "email", "", "the user the token acts as (required)")
	createToken.Flags().StringVar(&tokName, "name", "cli", "a name to recognise the token by")
	createToken.Flags().StringVar(&tokExpires, "expires", "", "how long the token works, e.g. 720h (default: until revoked)")

	listTokens := &cobra.Command{
		Use:   "list-tokens",
		Short: "List every API token: name, user, creation, last use, expiry and state (never the secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := server.ListAPITokens(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			writeTokenTable(cmd.OutOrStdout(), list)
			return nil
		},
	}

	revokeToken := &cobra.Command{
		Use:   "revoke-token ID",
		Short: "Revoke an API token: every server refuses it from its next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := server.RevokeAPIToken(cmd.Context(), cfg, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s (%q of %s) at %s\n", v.ID, v.Name, v.UserEmail, v.RevokedAt.UTC().Format(time.RFC3339))
			return nil
		},
	}

	admin.AddCommand(createUser, createToken, listTokens, revokeToken, newMigrateDBCmd(&cfg))
	return admin
}

// writeTokenTable prints tokens as an aligned table, one per line, with
// times in UTC (RFC 3339, no spaces, so each column is one field).
func writeTokenTable(w io.Writer, list []portal.APITokenView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tUSER\tCREATED\tLAST USED\tEXPIRES\tSTATE")
	when := func(t *time.Time, none string) string {
		if t == nil {
			return none
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.UserEmail, when(&t.CreatedAt, ""),
			when(t.LastUsedAt, "never"), when(t.ExpiresAt, "never"), t.State)
	}
	tw.Flush()
}

// readPassword reads the new user's password from a file, stdin ("-") or,
// on a terminal-less run without either, refuses: a password never goes on
// the command line, where other users can read it.
func readPassword(cmd *cobra.Command, file string) (string, error) {
	var r io.Reader
	switch file {
	case "":
		fmt.Fprint(cmd.ErrOrStderr(), "password: ")
		r = cmd.InOrStdin()
	case "-":
		r = cmd.InOrStdin()
	default:
		f, err := os.Open(file)
		if err != nil {
			return "", usagef("reading --password-file: %v", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("no password given")
	}
	return pw, nil
}
