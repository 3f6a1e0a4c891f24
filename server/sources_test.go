package server

import (
	"strings"
	"testing"

	"github.com/configd/configd/server/pump"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/consul"
	"github.com/configd/configd/source/file"
)

func TestLayerOrder(t *testing.T) {
	x := file.Config{Path: "x"}
	files := source.Config{Name: "defaults", Type: "file", Mount: "app/", TypeConfig: x}
	kv := source.Config{Name: "shared", Type: "consul", Mount: "app/", TypeConfig: consul.Config{}}
	store := source.Config{Type: pump.StoreType}
	tests := []struct {
		name string
		cfgs []source.Config
		want string // the order, or an error's text
	}{
		{"no sources", nil, "store"},
		{"store on top by default", []source.Config{files, kv}, "defaults < shared < store"},
		{"store placed", []source.Config{files, store, kv}, "defaults < store < shared"},
		{"store named", []source.Config{{Name: "store", Type: pump.StoreType}, files}, "store < defaults"},
		{"store twice", []source.Config{store, files, store}, "placed twice"},
		{"store renamed", []source.Config{{Name: "mine", Type: pump.StoreType}}, "not \"mine\""},
		{"reserved name", []source.Config{{Name: "store", Type: "file", TypeConfig: x}}, "reserved"},
		{"duplicate names", []source.Config{files, files}, "two sources are named"},
		{"bad mount", []source.Config{{Name: "a", Type: "file", Mount: "/app/", TypeConfig: x}}, "not a valid key prefix"},
		{"no name", []source.Config{{Type: "file", TypeConfig: x}}, "name is required"},
	}
	for _, tt := range tests {
		order, err := layerOrder(tt.cfgs)
		got := strings.Join(order, " < ")
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
