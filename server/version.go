package server

import "runtime/debug"

// version is set at link time:
//
//	go build -ldflags "-X github.com/configd/configd/server.version=v1.2.3" ./cmd/configd
var version string

// Version returns configd's version: the one set at link time, else the
// main module's version from the build information, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
