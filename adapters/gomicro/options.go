package configdsource

import (
	"context"

	"github.com/configd/configd/sdk/go/config"
	"go-micro.dev/v4/config/source"
)

// DefaultPrefix is the prefix a Source reads without WithPrefix, go-micro's
// etcd source's: configd's keys under micro/config.
const DefaultPrefix = "/micro/config/"

type prefixKey struct{}
type stripPrefixKey struct{}
type clientOptionsKey struct{}

// WithPrefix makes the Source read and watch the keys under prefix. configd
// keys never start with '/': leading and trailing slashes are dropped, so
// "/micro/config" reads configd's micro/config/... keys. "" or "/" is the
// whole keyspace.
func WithPrefix(prefix string) source.Option {
	return withValue(prefixKey{}, prefix)
}

// StripPrefix(true) roots the document at the prefix: micro/config/key1 is
// "key1" in go-micro's config. By default the prefix's segments stay, so it
// is micro.config.key1 (Get("micro", "config", "key1")).
func StripPrefix(strip bool) source.Option {
	return withValue(stripPrefixKey{}, strip)
}

// WithClientOptions passes options to the SDK client the Source reads
// through: its address, token, TLS, timeout, snapshot file. They add up
// over several calls.
func WithClientOptions(opts ...config.Option) source.Option {
	return func(o *source.Options) {
		prev, _ := contextOf(o).Value(clientOptionsKey{}).([]config.Option)
		all := append(append([]config.Option{}, prev...), opts...)
		o.Context = context.WithValue(contextOf(o), clientOptionsKey{}, all)
	}
}

// withValue is a source.Option storing v under k in the options' context,
// as go-micro's own sources keep their options.
func withValue(k, v any) source.Option {
	return func(o *source.Options) {
		o.Context = context.WithValue(contextOf(o), k, v)
	}
}

func contextOf(o *source.Options) context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}
