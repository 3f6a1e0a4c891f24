package offline

import (
	"context"
	"io"
)

// Command runs an offline command with its arguments (after its name), the
// process's environment, stdout and stderr, and returns the exit code.
type Command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int

// commands are the offline commands by name.
var commands = map[string]Command{
	"restore":           RestoreCommand,
	"rotate-master-key": RotateMasterKeyCommand,
	"rotate-data-keys":  RotateDataKeysCommand,
}

// Lookup returns the offline command called name.
func Lookup(name string) (Command, bool) {
	c, ok := commands[name]
	return c, ok
}
