package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/configd/configd/sdk/go/micro/client"
)

func TestWrapCallerOrder(t *testing.T) {
	var trace []string
	inner := client.CallerFunc(func(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error {
		trace = append(trace, "client "+service+" "+endpoint)
		return nil
	})
	tag := func(name string) client.ClientWrapper {
		return func(next client.Caller) client.Caller {
			return client.CallerFunc(func(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error {
				trace = append(trace, name)
				return next.Call(ctx, service, endpoint, req, rsp, opts...)
			})
		}
	}
	c := client.WrapCaller(inner, tag("outer"), tag("inner"))
	if err := c.Call(context.Background(), "svc", "T.M", nil, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"outer", "inner", "client svc T.M"}; !slices.Equal(trace, want) {
		t.Fatalf("trace %v, want %v", trace, want)
	}
}
