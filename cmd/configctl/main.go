// Command configctl is the command line of configd: it reads and changes
// keys, shows their history and diffs, rolls back, and applies and exports
// YAML files. Its commands and exit codes are documented in package
// internal/cli and by 'configctl --help'.
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
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
