package tcp_test

import (
	"testing"

	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

func TestTLS(t *testing.T) {
	transporttest.TLS(t, func(t *testing.T, opts ...transport.Option) transport.Transport {
		return tcp.New(opts...)
	}, "closed")
}
