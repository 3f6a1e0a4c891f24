package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/authz"
)

// startAuth returns the Auth of the daemon, or nil when authentication is
// off (dev mode: loopback, no --auth), which it logs. With authentication
// on and no token in the store, it creates the bootstrap admin token and
// logs its secret, once.
func startAuth(ctx context.Context, cfg Config, st *audit.Store, logger *slog.Logger) (*authz.Auth, error) {
	if !cfg.AuthOn() {
		logger.Warn("auth is off: anyone who can reach " + cfg.HTTPAddr + " may read and change everything (dev mode: loopback address without --auth)")
		return nil, nil
	}
	a, err := authz.New(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	given, from := cfg.BootstrapToken, EnvPrefix+"BOOTSTRAP_TOKEN"
	if cfg.BootstrapTokenFile != "" {
		if given, err = authz.ReadBootstrapTokenFile(cfg.BootstrapTokenFile); err != nil {
			return nil, err
		}
		from = cfg.BootstrapTokenFile
	}
	secret, err := a.Bootstrap(ctx, given, from)
	if err != nil {
		return nil, err
	}
	switch {
	case secret != "" && given != "":
		logger.Info("auth is on; created the admin token " + authz.BootstrapTokenName + " from " + from)
	case secret != "":
		logger.Warn("auth is on; created the admin token "+authz.BootstrapTokenName+": store it now, it is not shown again",
			"token", secret)
	default:
		logger.Info("auth is on")
	}
	return a, nil
}
