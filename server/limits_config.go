package server

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/setting"
)

// limitSettings are the settings of the per-identity limits and of the
// body read timeout, in the table of Config.Settings.
func (c *Config) limitSettings() setting.Table {
	return setting.Table{
		setting.Float(&c.RateLimit, "rate-limit", "requests per second allowed to each identity (token; client IP with auth off), e.g. 50; 0: no limit",
			checkRateLimit).Expect("a number of requests per second >= 0"),
		setting.Int(&c.RateBurst, "rate-burst", "requests an identity may send at once above --rate-limit (0: twice the rate)", setting.AtLeast(0)),
		setting.Int(&c.MaxWatchesPerIdentity, "max-watches-per-identity", "watches each identity may hold open, over HTTP and gRPC (0: no limit)",
			setting.AtLeast(0)),
		setting.Duration(&c.BodyReadTimeout, "body-read-timeout",
			"how long a client may take to send a request's body before it is answered 408 and disconnected (0: no limit; watches have no body)",
			setting.AtLeast(time.Duration(0))),
	}
}

func checkRateLimit(f float64) error {
	if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%v: want a number of requests per second >= 0", f)
	}
	return nil
}

func checkBootstrapSources(c *Config) error {
	if c.BootstrapToken != "" && c.BootstrapTokenFile != "" {
		return errors.New(EnvPrefix + "BOOTSTRAP_TOKEN and the bootstrap token file (--bootstrap-token-file, " +
			EnvPrefix + "BOOTSTRAP_TOKEN_FILE, auth.bootstrap_token_file) are both set: use one")
	}
	return nil
}

// Limits returns the per-identity limits c configures.
func (c Config) Limits() *authz.Limits {
	return authz.NewLimits(c.RateLimit, c.RateBurst, c.MaxWatchesPerIdentity)
}
