package server

import (
	"strings"
	"testing"

	"github.com/configd/configd/source"
)

func TestLayerOrder(t *testing.T) {
	file := source.Config{Name: "defaults", Type: "file", Path: "x", Mount: "app/"}
	consul := source.Config{Name: "shared", Type: "consul", Mount: "app/"}
	store := source.Config{Type: StoreType}
	tests := []struct {
		name string
		cfgs []source.Config
		want string // the order, or an error's text
	}{
		{"no sources", nil, "store"},
		{"store on top by default", []source.Config{file, consul}, "defaults < shared < store"},
		{"store placed", []source.Config{file, store, consul}, "defaults < store < shared"},
		{"store named", []source.Config{{Name: "store", Type: StoreType}, file}, "store < defaults"},
		{"store twice", []source.Config{store, file, store}, "placed twice"},
		{"store renamed", []source.Config{{Name: "mine", Type: StoreType}}, "not \"mine\""},
		{"reserved name", []source.Config{{Name: "store", Type: "file", Path: "x"}}, "reserved"},
		{"duplicate names", []source.Config{file, file}, "two sources are named"},
		{"bad mount", []source.Config{{Name: "a", Type: "file", Path: "x", Mount: "/app/"}}, "not a valid key prefix"},
		{"no name", []source.Config{{Type: "file", Path: "x"}}, "name is required"},
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
