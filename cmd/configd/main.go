// Command configd is the configuration daemon: it serves the audited
// configuration store over HTTP. Flags, environment variables
// (CONFIGD_...) and a YAML config file set it up; see configd -h and
// configd.example.yaml. The daemon itself is server.Run; its offline
// commands (server/offline) run on a stopped configd's data dir:
// "configd restore" restores it from a backup, "configd rotate-master-key"
// re-wraps the data keys of secrets under a new master key, "configd
// rotate-data-keys" gives secrets new data keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/configd/configd/internal/gctune"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/offline"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) > 1 {
		if cmd, ok := offline.Lookup(os.Args[1]); ok {
			return cmd(context.Background(), os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
		}
	}
	cfg, err := server.LoadConfig(os.Args[1:], os.LookupEnv, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, server.ErrVersion):
		fmt.Println("configd", server.Version())
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "configd:", err)
		return 2
	}
	logger, err := server.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configd:", err)
		return 2
	}
	defer gctune.Auto(os.Getenv, gctune.WithLogger(logger))()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts a graceful shutdown, a second one
	// kills the process the default way.
	context.AfterFunc(ctx, stop)
	if err := server.Run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "configd:", err)
		return 1
	}
	return 0
}
