package all_test

import (
	"slices"
	"testing"

	"github.com/configd/configd/source"
	_ "github.com/configd/configd/source/all"
)

func TestAllTypesRegistered(t *testing.T) {
	if got, want := source.Types(), []string{"consul", "env", "etcd", "file"}; !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
}
