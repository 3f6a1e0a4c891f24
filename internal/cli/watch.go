package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/sdk/go/config"
)

// watchChange is one key of a watched update, as -o json prints it.
type watchChange struct {
	Key         string `json:"key"`
	Op          string `json:"op"`
	Value       string `json:"value,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// watchUpdate is one revision of a watch, as -o json prints it (one object
// per line).
type watchUpdate struct {
	Rev     int64         `json:"rev"`
	Actor   string        `json:"actor,omitempty"`
	Origin  string        `json:"origin,omitempty"`
	Changes []watchChange `json:"changes"`
}

func (a *app) watchCmd() *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "watch KEY|PREFIX",
		Short: "Print every change to a key or a prefix as it happens",
		Long: `Print every change to a key or a prefix as it happens, until interrupted.

It uses the config SDK's watch stream on configd's port, so it sees each
revision once, in order, and resumes where it was if configd restarts.
A trailing '/' makes the argument a prefix. With -o json it prints one JSON
object per revision and line.

It watches the key or the prefix and nothing else, so a token needs read
on that only. When configd refuses the token (none, unknown, revoked, or
without read on what is watched) it exits 5 at once, saying why. A configd
that restarts or is overloaded is waited for; one that can't be reached at
the start fails the command after --timeout (exit 1).`,
		Example: `  configctl watch key1
  configctl watch app/ -o json
  configctl watch app/db/timeout --count 1   # wait for the next change, then exit`,
		Args: rangeArgs(1, 1, "a KEY or PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := args[0]
			sc := watchScope{key: arg}
			if strings.HasSuffix(arg, "/") {
				prefix, err := keyspace.Prefix(arg)
				if err != nil {
					return usagef("%v", err)
				}
				sc = watchScope{prefix: prefix}
			} else if err := keyspace.Validate(arg); err != nil {
				return usagef("%v", err)
			}
			if count < 0 {
				return usagef("--count %d: must not be negative", count)
			}
			return a.watch(cmd.Context(), sc, count)
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many updates (0: run until interrupted)")
	return cmd
}

// sdkAddress turns --addr (host:port or an http URL) into the host:port
// the SDK dials.
func sdkAddress(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		return addr, nil
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", usagef("--addr %q: not host:port or an http(s) URL", addr)
	}
	if u.Port() == "" {
		if u.Scheme == "https" {
			return u.Host + ":443", nil
		}
		return u.Host + ":80", nil
	}
	return u.Host, nil
}

// watchScope is what watch watches: one key, or every key under a
// canonical prefix ("" is every key).
type watchScope struct{ key, prefix string }

// name is the scope as the "watching" line says it.
func (sc watchScope) name() string {
	switch {
	case sc.key != "":
		return sc.key
	case sc.prefix == "":
		return "everything"
	}
	return strings.TrimSuffix(sc.prefix, "/")
}

// watch prints the changes of sc with an SDK client of sc and nothing
// more, so that a token that may read sc may watch it.
func (a *app) watch(ctx context.Context, sc watchScope, count int) error {
	addr, err := sdkAddress(a.addr)
	if err != nil {
		return err
	}
	timeout := a.timeout
	if timeout == 0 {
		timeout = config.DefaultTimeout
	}
	// The client's paths are relative to its prefix: a client of a prefix
	// watches its whole scope, a client of a key that key.
	scope, path := config.WithPrefix(sc.prefix), ""
	if sc.key != "" {
		scope, path = config.WithKeys(sc.key), sc.key
	}
	opts := []config.Option{config.WithAddress(addr), config.WithTimeout(timeout), scope, config.WithToken(a.token),
		config.WithLogger(slog.New(warningsOnly{slog.NewTextHandler(a.stderr, nil)}))}
	tc, err := a.tlsConfig()
	if err != nil {
		return err
	}
	if tc != nil {
		opts = append(opts, config.WithTLS(tc))
	}
	c, err := config.New(ctx, opts...)
	if errors.Is(err, config.ErrUnavailable) {
		return fmt.Errorf("cannot reach configd at %s: %w", addr, err)
	}
	if err != nil {
		return err // a refusal says what configd said
	}
	defer c.Close()
	w, err := c.Watch(path)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, w.Stop)
	defer stop()
	fmt.Fprintf(a.stderr, "watching %s at rev %d\n", sc.name(), c.Rev())
	for n := 0; count == 0 || n < count; n++ {
		u, err := w.NextUpdate()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end
			}
			return err
		}
		if err := a.printUpdate(u, sc.prefix); err != nil {
			return err
		}
	}
	return nil
}

// printUpdate prints u, whose keys are relative to prefix.
func (a *app) printUpdate(u config.Update, prefix string) error {
	out := watchUpdate{Rev: u.Rev, Actor: u.Actor, Origin: u.Origin, Changes: make([]watchChange, 0, len(u.Changes))}
	for _, ch := range u.Changes {
		wc := watchChange{Key: prefix + ch.Key, Op: "put"}
		if ch.Deleted {
			wc.Op = "delete"
		} else {
			wc.Value, wc.Encoding = api.EncodeValue(ch.Value.Bytes())
			wc.ContentType = ch.Value.ContentType()
		}
		out.Changes = append(out.Changes, wc)
	}
	switch a.output {
	case "json":
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	case "yaml":
		if _, err := fmt.Fprintln(a.stdout, "---"); err != nil {
			return err
		}
		return writeYAML(a.stdout, out)
	}
	for _, ch := range out.Changes {
		by := ""
		if out.Actor != "" {
			by = " by " + out.Actor
		}
		var err error
		if ch.Op == "delete" {
			_, err = fmt.Fprintf(a.stdout, "rev %d%s: delete %s\n", out.Rev, by, ch.Key)
		} else {
			_, err = fmt.Fprintf(a.stdout, "rev %d%s: %s = %s\n", out.Rev, by, ch.Key, displayValue(ch.Value, ch.Encoding))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// warningsOnly passes on the SDK's warnings (configd unreachable,
// reconnecting); its errors are refusals, which watch returns and Main
// prints.
type warningsOnly struct{ slog.Handler }

func (h warningsOnly) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && l < slog.LevelError
}

func (h warningsOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warningsOnly{h.Handler.WithAttrs(attrs)}
}

func (h warningsOnly) WithGroup(name string) slog.Handler {
	return warningsOnly{h.Handler.WithGroup(name)}
}

// displayValue shows a value on one line.
func displayValue(v, encoding string) string {
	if encoding != "" {
		return "(" + encoding + ") " + v
	}
	if strings.ContainsAny(v, "\n\r") {
		return fmt.Sprintf("%q", v)
	}
	return v
}
