package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
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

	var tokEmail, tokName string
	createToken := &cobra.Command{
		Use:   "create-token --email EMAIL [--name NAME]",
		Short: "Create an API token for a user; it is printed once and stored only hashed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokEmail == "" {
				return usagef("--email is required")
			}
			tok, err := server.CreateAPIToken(cmd.Context(), cfg, tokEmail, tokName)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintln(cmd.ErrOrStderr(), "ferry: this token is shown once; store it now (use it as Authorization: Bearer <token>)")
			return nil
		},
	}
	createToken.Flags().StringVar(&tokEmail, "email", "", "the user the token acts as (required)")
	createToken.Flags().StringVar(&tokName, "name", "cli", "a name to recognise the token by")

	admin.AddCommand(createUser, createToken)
	return admin
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
