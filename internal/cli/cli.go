// Package cli implements configctl, the command line of configd. The
// binary's main only calls Main; everything else lives here so that tests
// run the commands in-process.
//
// Exit codes, part of configctl's contract with scripts:
//
//	0  success (including "nothing to do": an unchanged set, a rollback to
//	   the current state)
//	1  error: configd unreachable or answering with an error, a bad file
//	2  usage: unknown command or flag, wrong arguments, invalid key
//	3  not found: the key or the revision does not exist
//	4  conflict: a compare-and-set (--if-mod-rev, --expect-rev) failed
//	5  not allowed: configd wants a token (401) or the token lacks the
//	   right (403)
//	6  schema: the write breaks a prefix's JSON Schema, or a new schema is
//	   broken by the current state (422 schema); nothing was written
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/loopback"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/config"
)

// Exit codes of Main.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitNotFound = 3
	ExitConflict = 4
	ExitDenied   = 5
	ExitSchema   = 6
)

// DefaultAddr is the address of configd when neither --addr nor
// CONFIGD_ADDR names one.
const DefaultAddr = api.DefaultAddr

// EnvAddr is the environment variable that sets the default of --addr.
const EnvAddr = api.EnvAddr

// EnvToken is the environment variable that sets the default of --token.
const EnvToken = api.EnvToken

// Environment variables that set the defaults of --ca, --cert and --key.
const (
	EnvCA   = api.EnvCA
	EnvCert = api.EnvCert
	EnvKey  = api.EnvKey
)

// Version is configctl's version, set at link time with
// -ldflags "-X github.com/configd/configd/internal/cli.Version=v1.2.3".
// When empty, the module version from the build info is used.
var Version = ""

const exitCodeHelp = `Exit codes:
  0  success (also when there is nothing to do)
  1  error, including configd not reachable
  2  usage error (bad command, flag, argument or key)
  3  not found (key or revision)
  4  conflict (a --if-mod-rev or --expect-rev check failed)
  5  not allowed: no valid token (HTTP 401) or the token lacks the right (403)
  6  schema: the write breaks a prefix's JSON Schema (nothing was written)`

// Main runs configctl with args (without the program name) and returns its
// exit code. It reads CONFIGD_ADDR, USER and the host name from the process.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.run(ctx, a.rootCmd(), args)
}

// app is one run of configctl: its streams and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	addr    string
	output  string
	reason  string
	actor   string
	token   string
	timeout time.Duration
	// caFile, certFile, keyFile: TLS (--ca, --cert, --key).
	caFile, certFile, keyFile string
	// actorSet: --as was given; with a token the actor is otherwise the
	// token's name, and only an admin token may claim another.
	actorSet bool

	// ran is set once cobra has parsed the command line and validated the
	// arguments: an error before that is a usage error.
	ran bool
	c   *apiclient.Client
}

// usageError marks an error as the caller's misuse (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run runs root (configctl's or micro's) with args; errors are reported under root's name.
func (a *app) run(ctx context.Context, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err, a.ran)
	msg := oneLine(err.Error())
	if code == ExitUsage && cmd != nil {
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	switch {
	case errors.Is(err, apiclient.ErrTLS):
		msg += " (check --ca, --cert and --key, or " + EnvCA + ", " + EnvCert + " and " + EnvKey + ")"
	case errors.Is(err, apiclient.ErrUnreachable):
		msg += " (is configd running? set --addr or " + EnvAddr + ")"
	}
	if errors.Is(err, apiclient.ErrUnauthenticated) || errors.Is(err, config.ErrUnauthenticated) {
		msg += " (set --token or " + EnvToken + ")"
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", root.Name(), msg)
	return code
}

// exitCode maps an error to configctl's exit code.
func exitCode(err error, ran bool) int {
	var ue usageError
	switch {
	case !ran || errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, apiclient.ErrNotFound), errors.Is(err, apiclient.ErrRevisionGone):
		return ExitNotFound
	case errors.Is(err, apiclient.ErrConflict):
		return ExitConflict
	case errors.Is(err, apiclient.ErrSchema):
		return ExitSchema
	case errors.Is(err, apiclient.ErrUnauthenticated), errors.Is(err, apiclient.ErrForbidden),
		errors.Is(err, config.ErrUnauthenticated), errors.Is(err, config.ErrForbidden):
		return ExitDenied
	}
	return ExitError
}

// oneLine folds a message onto one line, for stderr.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "configctl",
		Short: "configctl reads and changes the configuration held by configd",
		Long: `configctl reads and changes the configuration held by configd.

Every change is a numbered revision that records who made it (--as), why
(--reason), and the old and new values; nothing is ever rewritten, and a
rollback is a new revision whose content is an old one.

Keys are paths such as app/db/timeout. Where a command takes a KEY or a
PREFIX, a trailing '/' makes it a prefix (app/ is every key under app/).

` + exitCodeHelp,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			switch a.output {
			case "table", "json", "yaml":
			default:
				return usagef("-o %q: want table, json or yaml", a.output)
			}
			if a.timeout < 0 {
				return usagef("--timeout %v: must not be negative", a.timeout)
			}
			a.actorSet = cmd.Flags().Changed("as")
			return nil
		},
	}
	root.SetVersionTemplate("configctl {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	addr := DefaultAddr
	if env := a.getenv(EnvAddr); env != "" {
		addr = env
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", addr, "configd address, host:port or http(s) URL (env "+EnvAddr+")")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&a.reason, "reason", "", "why the change is made, recorded in its revision")
	pf.StringVar(&a.actor, "as", defaultActor(a.getenv), "who makes the change, recorded in its revision")
	pf.StringVar(&a.token, "token", a.getenv(EnvToken), "bearer token for configd when it requires authentication (env "+EnvToken+")")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long to wait for configd (0: no limit)")
	pf.StringVar(&a.caFile, "ca", a.getenv(EnvCA), "PEM file of the CA that signs configd's certificate: talk HTTPS (env "+EnvCA+"; an https:// --addr without it trusts the system's CAs)")
	pf.StringVar(&a.certFile, "cert", a.getenv(EnvCert), "PEM file of the client certificate, for a configd that requires one (env "+EnvCert+")")
	pf.StringVar(&a.keyFile, "key", a.getenv(EnvKey), "PEM file of the key of --cert (env "+EnvKey+")")

	root.AddCommand(
		a.setCmd(), a.getCmd(), a.delCmd(), a.lsCmd(),
		a.historyCmd(), a.revCmd(), a.diffCmd(), a.rollbackCmd(),
		a.applyCmd(), a.exportCmd(), a.watchCmd(), a.sourcesCmd(), a.replicasCmd(), a.clientsCmd(),
		a.schemaCmd(), a.statusCmd(), a.versionCmd(),
		a.auditCmd(), a.backupCmd(), a.tokenCmd(),
		a.svcCmd(),
		a.proposeCmd(), a.requestCmd(), a.policyCmd(), a.rolloutCmd(),
	)
	return root
}

// client returns the client of --addr, made on first use so that commands
// that need no configd (version, completion, help) never fail on a bad
// address.
func (a *app) client() (*apiclient.Client, error) {
	if a.c != nil {
		return a.c, nil
	}
	actor := a.actor
	if a.token != "" && !a.actorSet {
		actor = "" // configd records the token's name
	}
	opts := []apiclient.Option{
		apiclient.WithActor(actor),
		apiclient.WithToken(a.token),
		apiclient.WithUserAgent("configctl/" + version()),
		apiclient.WithTimeout(a.timeout),
	}
	tc, err := a.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, apiclient.WithTLS(tc))
	}
	c, err := apiclient.New(a.addr, opts...)
	if err != nil {
		return nil, usagef("--addr: %v", strings.TrimPrefix(err.Error(), "client: "))
	}
	a.c = c
	return c, nil
}

// tlsConfig returns the TLS configuration of --ca, --cert and --key, or
// nil when none is given and --addr is not https:// (plaintext). The files
// are read by config.LoadTLS, as the SDK reads them.
func (a *app) tlsConfig() (*tls.Config, error) {
	if a.caFile == "" && a.certFile == "" && a.keyFile == "" {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.addr)), "https://") {
			return nil, nil
		}
	}
	tc, err := config.LoadTLS(a.caFile, a.certFile, a.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return tc, nil
}

// checkConfidential refuses to carry secret values (for what) on a
// connection that is neither TLS nor to a loopback address. configd
// applies the same rule from its side; configctl applies it too, as a
// proxy in front of configd could hide a plaintext hop from configd.
func (a *app) checkConfidential(what string) error {
	tc, err := a.tlsConfig()
	if err != nil || tc != nil {
		return err
	}
	hostport, err := sdkAddress(a.addr)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return usagef("--addr %q: %v", a.addr, err)
	}
	if !loopback.Host(host) {
		return usagef("%s: secret values travel only over TLS or to a loopback address, and %s is neither: "+
			"use TLS (--ca, or an https:// --addr) or run configctl on configd's host", what, host)
	}
	return nil
}

// defaultActor is $USER@hostname, or unknown@hostname.
func defaultActor(getenv func(string) string) string {
	user := getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return user + "@" + host
}

// version is configctl's version: Version, else the module version, else
// "devel".
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// exactArgs, rangeArgs: argument checks whose messages say what is wanted.
func rangeArgs(lo, hi int, want string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("%s: want %s, got %d argument(s)", cmd.Name(), want, len(args))
		}
		return nil
	}
}
