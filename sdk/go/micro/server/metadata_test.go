package server_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/server"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
)

func TestEndpointMetadataIsRegistered(t *testing.T) {
	reg := memory.New()
	srv, err := server.New(server.Name("greeter"), server.Registry(reg), server.Transport(tmem.New()), server.GracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{"handler": "rpc", "method": "POST", "path": "/greet/{name}"}
	if err := srv.Handle(&Greeter{}, server.EndpointMetadata("Greeter.Hello", md)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(t.Context()) })
	svcs, err := reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ep := range svcs[0].Endpoints {
		if ep.Name == "Greeter.Hello" {
			found = maps.Equal(ep.Metadata, md)
		} else if len(ep.Metadata) != 0 {
			t.Errorf("%s has metadata %v", ep.Name, ep.Metadata)
		}
	}
	if !found {
		t.Fatalf("Greeter.Hello registered without its metadata: %+v", svcs[0].Endpoints)
	}
}

func TestEndpointMetadataForAnUnknownEndpointFailsHandle(t *testing.T) {
	srv, err := server.New(server.Name("greeter"), server.Registry(memory.New()), server.Transport(tmem.New()))
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Handle(&Greeter{}, server.EndpointMetadata("Greeter.Helo", map[string]string{"path": "/x"}))
	if err == nil || !strings.Contains(err.Error(), "Greeter.Helo") {
		t.Fatalf("Handle = %v, want an error naming Greeter.Helo", err)
	}
}
