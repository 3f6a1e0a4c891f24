package cli

import (
	"context"
	"encoding/json"
	"fmt"
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

It uses the config SDK's watch stream (gRPC on configd's port), so it sees
each revision once, in order, and resumes where it was if configd restarts.
A trailing '/' makes the argument a prefix. With -o json it prints one JSON
object per revision and line.`,
		Example: `  configctl watch key1
  configctl watch app/ -o json
  configctl watch app/db/timeout --count 1   # wait for the next change, then exit`,
		Args: rangeArgs(1, 1, "a KEY or PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if strings.HasSuffix(path, "/") {
				if _, err := keyspace.Prefix(path); err != nil {
					return usagef("%v", err)
				}
				path = strings.TrimSuffix(path, "/")
			} else if err := keyspace.Validate(path); err != nil {
				return usagef("%v", err)
			}
			if count < 0 {
				return usagef("--count %d: must not be negative", count)
			}
			return a.watch(cmd.Context(), path, count)
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

func (a *app) watch(ctx context.Context, path string, count int) error {
	addr, err := sdkAddress(a.addr)
	if err != nil {
		return err
	}
	timeout := a.timeout
	if timeout == 0 {
		timeout = config.DefaultTimeout
	}
	opts := []config.Option{config.WithAddress(addr), config.WithTimeout(timeout)}
	tc, err := a.tlsConfig()
	if err != nil {
		return err
	}
	if tc != nil {
		opts = append(opts, config.WithTLS(tc))
	}
	c, err := config.New(ctx, opts...)
	if err != nil {
		return fmt.Errorf("cannot reach configd at %s: %w", addr, err)
	}
	defer c.Close()
	w, err := c.Watch(path)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, w.Stop)
	defer stop()
	fmt.Fprintf(a.stderr, "watching %s at rev %d\n", args0(path), c.Rev())
	for n := 0; count == 0 || n < count; n++ {
		u, err := w.NextUpdate()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end
			}
			return err
		}
		if err := a.printUpdate(u); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) printUpdate(u config.Update) error {
	out := watchUpdate{Rev: u.Rev, Actor: u.Actor, Origin: u.Origin, Changes: make([]watchChange, 0, len(u.Changes))}
	for _, ch := range u.Changes {
		wc := watchChange{Key: ch.Key, Op: "put"}
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

func args0(path string) string {
	if path == "" {
		return "everything"
	}
	return path
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
