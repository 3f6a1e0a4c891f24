package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// layerOf returns the index in Layers of the module's package path (below
// Module), the most specific pattern winning; -1 when none holds it.
func layerOf(path string) int {
	best, bestLen := -1, -1
	for i, l := range Layers {
		for _, p := range l.Packages {
			match := path == p
			if base, ok := strings.CutSuffix(p, "/..."); ok {
				match = path == base || strings.HasPrefix(path, base+"/")
			}
			if match && len(p) > bestLen {
				best, bestLen = i, len(p)
			}
		}
	}
	return best
}

// modulePackages lists the module's packages with their imports (not
// their tests'), below Module.
func modulePackages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", Module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var own []string
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, Module+"/"); ok {
				own = append(own, rel)
			}
		}
		pkgs[strings.TrimPrefix(p.ImportPath, Module+"/")] = own
	}
	return pkgs
}

// TestNoPackageImportsAHigherLayer: the compiler sees no cycles, this
// test sees no package importing one above it in Layers, nor a package
// that has no layer (a new one must be placed).
func TestNoPackageImportsAHigherLayer(t *testing.T) {
	pkgs := modulePackages(t)
	if len(pkgs) < 40 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for path, imports := range pkgs {
		l := layerOf(path)
		if l < 0 {
			t.Errorf("%s is in no layer: add it to archtest.Layers", path)
			continue
		}
		for _, imp := range imports {
			if il := layerOf(imp); il > l {
				t.Errorf("%s (layer %d, %s) imports %s (layer %d, %s), which sits above it",
					path, l, Layers[l].Name, imp, il, Layers[il].Name)
			}
		}
	}
}

// TestEveryLayerPatternHoldsAPackage: a pattern left behind by a package
// that moved or went away fails here.
func TestEveryLayerPatternHoldsAPackage(t *testing.T) {
	pkgs := modulePackages(t)
	for _, l := range Layers {
		for _, p := range l.Packages {
			found := false
			base, wild := strings.CutSuffix(p, "/...")
			for path := range pkgs {
				if path == base || wild && strings.HasPrefix(path, base+"/") {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("layer %q names %s, which holds no package", l.Name, p)
			}
		}
	}
}

// The test of the test: a package that imports one above it is caught.
func TestLayerOfOrdersTheLayers(t *testing.T) {
	for _, tc := range []struct {
		low, high string
	}{
		{"keyspace", "audit"}, {"setting", "audit"}, {"audit", "watcher"}, {"audit/internal/commit", "watcher"}, {"watcher", "server/core"}, {"server/core", "server/httpapi"},
		{"server/authz", "server/grpcapi"}, {"server/httpapi", "server"}, {"server", "server/offline"},
		{"source/file", "server/pump"}, {"sdk/go/micro/registry", "server/announce"}, {"server", "sdk/go/config"},
	} {
		if l, h := layerOf(tc.low), layerOf(tc.high); l < 0 || h <= l {
			t.Errorf("%s is at layer %d, %s at %d: want it below", tc.low, l, tc.high, h)
		}
	}
}
