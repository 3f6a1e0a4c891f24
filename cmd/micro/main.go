// Command micro is the talk's micro command on configd's RPC core: the api and web gateways
// and the registry's list, get, health, stats and call (see internal/cli.MicroMain).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/configd/configd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MicroMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
