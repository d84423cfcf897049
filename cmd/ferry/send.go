package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/send/tus"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newSendCmd) }

func newSendCmd() *cobra.Command {
	var (
		to, token, password, name, email, message string
		streams                                   int
		quiet, again, wait                        bool
	)
	cmd := &cobra.Command{
		Use:   "send PATH... --to https://host/p/slug",
		Short: "Upload files and folders as one package to a portal (or, with --token, a server)",
		Long: `Upload files and folders as one package, then finalize it and print its id.

Folders keep their structure (the folder's own name is the top folder in the
package); .DS_Store, desktop.ini and Thumbs.db are skipped. Every byte is
read once: it is hashed (SHA-256) as it is sent, and each upload's digest is
declared after its last byte (an HTTP trailer; if a proxy drops it, in a
request of its own). The server hashes what arrives and refuses a mismatch;
a damaged upload is sent again.

Parallelism: --streams N (default 4) is the number of simultaneous upload
connections. Files smaller than 64 MiB, and every file with --streams 1, are
sent whole, up to N at a time. With more streams, a file of 64 MiB or more is
split into max(N, size/256 MiB) equal parts, sent up to N at a time and
joined on the server without copying (tus concatenation); each part's digest
is verified on arrival, the whole file's when the server first reads it in
order. On long links more streams give more throughput: each connection is
limited by its own window.

Resume: if the upload is interrupted (Ctrl-C, a dropped connection, a crash),
run the same command again: the same --to, paths and --name continue the same
package, without re-sending what is done (each unfinished upload re-reads
at most the bytes since its last saved hash checkpoint); it says so first
("resuming: 12 of 40 files done, 1.2 GiB left"). Resume state lives in
the user cache directory (ferry/send/) and is removed once the package is
finalized. Every upload is recorded there (on disk, synced) before its first
byte is sent, so a run after a kill -9 or a power cut continues each file
from what the server holds. Network errors and server errors (5xx) are
retried with backoff.

Sent once: a finished send is remembered in the same place (the same server
and portal, paths and --name). Running it again prints "already sent as
package ID on DATE" on standard error and the id on standard output, and
exits 0 without sending anything; --again sends a new package on purpose.

Progress goes to standard error: bars per file and in total (speed, ETA) when
it is a terminal that reports its size, plain lines every 5 seconds otherwise. When the package is
finalized, standard error says what was sent (name, id, file count, size).
The package id is the only thing printed on standard output
(id=$(ferry send ...) works).

--wait then follows the package into iconik: a line per delivery as it
moves, and exit 0 only when every file is delivered (1 with the failed files
and the reasons otherwise).

Without a portal, send to a server's admin API: --to https://host --token T.

Exit codes: 0 done, 1 failed (every refusal by the server, with its message;
with --wait also a file not delivered), 2 bad usage on this command line.`,
		Example: `  ferry send ./shoot-day-1 --to https://ferry.example.com/p/acme --email me@example.com
  ferry send a.mov b.mov --to https://ferry.example.com/p/acme --name "Rushes" --streams 8
  ferry send ./project --to https://ferry.example.com --token "$FERRY_TOKEN"
  ferry send ./shoot-day-1 --to https://ferry.example.com/p/acme --again   # a second package of the same files`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("send: give at least one file or folder to send")
			}
			if to == "" {
				return usagef("send: --to is required (a portal URL like https://host/p/slug)")
			}
			target, err := send.ParseTarget(to, token)
			if err != nil {
				return usagef("send: %v", err)
			}
			if streams < 1 || streams > send.MaxStreams {
				return usagef("send: --streams must be between 1 and %d, not %d", send.MaxStreams, streams)
			}
			for _, p := range args {
				if _, err := os.Stat(p); err != nil {
					return usagef("send: cannot read %s: %v", p, errors.Unwrap(err))
				}
			}
			out := cmd.OutOrStdout()
			errOut := cmd.ErrOrStderr()
			var prog send.Progress
			var status io.Writer
			if !quiet {
				status = errOut
			}
			switch {
			case quiet:
			case isTerminal(errOut):
				prog = send.NewBars(errOut)
			default:
				prog = send.NewLines(errOut, 5*time.Second)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := send.Send(ctx, send.Options{
				Target:   target,
				Paths:    args,
				Info:     send.PackageInfo{Name: name, Email: email, Message: message, Password: password},
				Streams:  streams,
				Again:    again,
				Progress: prog,
				Status:   status,
				Log:      slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if errors.Is(err, send.ErrInterrupted) {
				// What was interrupted is of no use to the user; the state is saved.
				return errors.New("send interrupted: run the same command again to resume")
			}
			if err != nil {
				return refusal(err)
			}
			if !res.AlreadySent.IsZero() {
				fmt.Fprintf(errOut, "already sent as package %s on %s (--again sends a new package)\n",
					res.PackageID, res.AlreadySent.Local().Format("2006-01-02 15:04:05 MST"))
				fmt.Fprintln(out, res.PackageID)
				if wait && target.Slug != "" && res.UploadToken == "" {
					return errors.New("send --wait: the record of that earlier run (made by an older ferry) has no upload token, so its deliveries cannot be followed from here; ask the portal's owner")
				}
				return waitFor(ctx, wait, target, res, status)
			}
			summary := "sent package " + res.PackageID
			if res.Name != "" {
				summary = fmt.Sprintf("sent %q as package %s", res.Name, res.PackageID)
			}
			summary += fmt.Sprintf(": %d files, %s", res.Files, send.Human(res.Bytes))
			if res.Skipped > 0 {
				summary += fmt.Sprintf(" (%d of them were already on the server)", res.Skipped)
			}
			if !quiet {
				fmt.Fprintln(errOut, summary)
				if res.ReceiptURL != "" {
					fmt.Fprintln(errOut, "receipt (files, and whether they are delivered):", res.ReceiptURL)
				}
			}
			fmt.Fprintln(out, res.PackageID)
			return waitFor(ctx, wait, target, res, status)
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "portal URL (https://host/p/slug), or server URL with --token")
	f.StringVar(&token, "token", "", "API token, to send to a server's admin API without a portal (or set FERRY_TOKEN)")
	f.StringVar(&password, "password", "", "the portal's upload password, if it has one (or set FERRY_PASSWORD, which other users cannot see)")
	f.StringVar(&name, "name", "", "package name")
	f.StringVar(&email, "email", "", "your email address (the sender)")
	f.StringVar(&message, "message", "", "a message for the recipients (package description)")
	f.IntVar(&streams, "streams", send.DefaultStreams, "simultaneous upload connections; files >= 64 MiB are split into at least this many parts of at most 256 MiB")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output; print only the package id")
	f.BoolVar(&wait, "wait", false, "after sending, follow the package's deliveries into iconik (a line per delivery as it moves); exit 0 only when every file is delivered")
	f.BoolVar(&again, "again", false, "send a new package even if these paths were already sent to this portal under this --name")
	cmd.PreRun = func(*cobra.Command, []string) {
		if token == "" {
			token = os.Getenv("FERRY_TOKEN")
		}
		if password == "" {
			password = os.Getenv("FERRY_PASSWORD")
		}
	}
	return cmd
}

// isTerminal reports whether w is a terminal the bars can be drawn on (or
// else plain lines are printed). A terminal that reports no size (a pty made
// by `script` without a terminal around it, some CI runners) counts as none:
// mpb draws nothing at all there.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	if isatty.IsCygwinTerminal(f.Fd()) {
		return true
	}
	if !isatty.IsTerminal(f.Fd()) {
		return false
	}
	return hasSize(f)
}

// waitPoll is how often --wait asks the server (tests shorten it).
var waitPoll = 2 * time.Second

// waitFor follows the deliveries when --wait was given.
// Its progress lines go to status (nil with --quiet).
func waitFor(ctx context.Context, wait bool, target send.Target, res send.Result, status io.Writer) error {
	if !wait {
		return nil
	}
	err := send.Wait(ctx, send.WaitOptions{Target: target, PackageID: res.PackageID, UploadToken: res.UploadToken, Out: status, Every: waitPoll})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return errors.New("stopped waiting for the deliveries; the package is sent and its deliveries go on")
	}
	return fmt.Errorf("send --wait: %w", err)
}

// refusal words a failed send for the user: a refusal by the server (4xx
// with a message) is the server's own sentence, which names the file where
// it is about one; other failures keep what was being done.
func refusal(err error) error {
	var te *tus.Error
	if errors.As(err, &te) && te.Status >= 400 && te.Status < 500 && te.Message != "" {
		return refused(te.Message, te.Code, err)
	}
	var ae *send.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Message != "" {
		return refused(ae.Message, ae.Code, err)
	}
	return fmt.Errorf("send: %w", err)
}

func refused(msg, code string, err error) error {
	if code != "" {
		msg += " (" + code + ")"
	}
	return fmt.Errorf("send: the server refused: %s%w", msg, silentWrap{err})
}

// silentWrap wraps an error for errors.Is/As without adding to the message.
type silentWrap struct{ err error }

func (q silentWrap) Error() string { return "" }
func (q silentWrap) Unwrap() error { return q.err }
