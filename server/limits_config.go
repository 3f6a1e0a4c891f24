package server

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The settings of the per-identity limits and of the bootstrap token file,
// in the settings table of config.go.
var (
	bootstrapTokenFileSetting = setting{
		name:    "bootstrap-token-file",
		fileKey: "auth.bootstrap_token_file",
		usage:   "file holding the bootstrap admin token (content trimmed), instead of " + EnvPrefix + "BOOTSTRAP_TOKEN",
		get:     func(c *Config) string { return c.BootstrapTokenFile },
		set:     func(c *Config, v string) error { c.BootstrapTokenFile = strings.TrimSpace(v); return nil },
		check:   checkBootstrapSources,
	}
	rateLimitSetting = setting{
		name:  "rate-limit",
		usage: "requests per second allowed to each identity (token; client IP with auth off), e.g. 50; 0: no limit",
		get:   func(c *Config) string { return strconv.FormatFloat(c.RateLimit, 'g', -1, 64) },
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%q: want a number of requests per second >= 0", v)
			}
			if err := checkRateLimit(f); err != nil {
				return err
			}
			c.RateLimit = f
			return nil
		},
		check: func(c *Config) error { return checkRateLimit(c.RateLimit) },
	}
	rateBurstSetting = intSetting("rate-burst", "requests an identity may send at once above --rate-limit (0: twice the rate)",
		func(c *Config) *int { return &c.RateBurst })
	maxWatchesSetting = intSetting("max-watches-per-identity", "watches each identity may hold open, over HTTP and gRPC (0: no limit)",
		func(c *Config) *int { return &c.MaxWatchesPerIdentity })
	bodyReadTimeoutSetting = setting{
		name:  "body-read-timeout",
		usage: "how long a client may take to send a request's body before it is answered 408 and disconnected (0: no limit; watches have no body)",
		get:   func(c *Config) string { return c.BodyReadTimeout.String() },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < 0 {
				return fmt.Errorf("%q: want a duration >= 0 (e.g. 1m)", v)
			}
			c.BodyReadTimeout = d
			return nil
		},
		check: func(c *Config) error {
			if c.BodyReadTimeout < 0 {
				return fmt.Errorf("%v: want a duration >= 0", c.BodyReadTimeout)
			}
			return nil
		},
	}
)

// intSetting is a setting whose value is a whole number >= 0.
func intSetting(name, usage string, field func(*Config) *int) setting {
	check := func(n int) error {
		if n < 0 {
			return fmt.Errorf("%d: want a whole number >= 0", n)
		}
		return nil
	}
	return setting{
		name:  name,
		usage: usage,
		get:   func(c *Config) string { return strconv.Itoa(*field(c)) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q: want a whole number >= 0", v)
			}
			if err := check(n); err != nil {
				return err
			}
			*field(c) = n
			return nil
		},
		check: func(c *Config) error { return check(*field(c)) },
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
func (c Config) Limits() *Limits {
	return NewLimits(c.RateLimit, c.RateBurst, c.MaxWatchesPerIdentity)
}
