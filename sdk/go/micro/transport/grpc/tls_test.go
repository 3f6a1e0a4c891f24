package grpc_test

import (
	"testing"

	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	"github.com/configd/configd/sdk/go/micro/transport/transporttest"
)

func TestTLS(t *testing.T) {
	transporttest.TLS(t, func(t *testing.T, opts ...transport.Option) transport.Transport {
		tr := tgrpc.New(opts...)
		t.Cleanup(func() { tr.Close() })
		return tr
	}, "server preface")
}
