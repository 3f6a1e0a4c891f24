package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/textdiff/textdifftest"
)

// foldRE is configctl diff's line for a run of unchanged lines.
var foldRE = regexp.MustCompile(`^  \.\.\. \((\d+) unchanged lines\)$`)

// TestDiffPrintsTheGoldenHunks: configctl diff of each golden change prints
// exactly its hunks, as the web UI shows them (web's
// TestDiffShowsTheGoldenHunks checks the same files). The line numbers are
// counted from what configctl prints: its unchanged and folded lines.
func TestDiffPrintsTheGoldenHunks(t *testing.T) {
	for _, c := range textdifftest.HunkCases(t) {
		ch := api.Change{Key: "k", New: &api.KeyValue{Key: "k", Value: c.New, ContentType: "text/plain"}}
		if c.OldExists {
			ch.Old = &api.KeyValue{Key: "k", Value: c.Old, ContentType: "text/plain"}
		}
		var out strings.Builder
		printKeyDiff(&out, ch, 1, 2)
		var hunks strings.Builder
		oldN, newN := 0, 0
		for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			switch {
			case strings.HasPrefix(l, "--- "), strings.HasPrefix(l, "+++ "), strings.HasPrefix(l, "# "):
			case foldRE.MatchString(l):
				n, _ := strconv.Atoi(foldRE.FindStringSubmatch(l)[1])
				oldN, newN = oldN+n, newN+n
			case strings.HasPrefix(l, "- "):
				oldN++
				fmt.Fprintf(&hunks, "-%d %s\n", oldN, l[2:])
			case strings.HasPrefix(l, "+ "):
				newN++
				fmt.Fprintf(&hunks, "+%d %s\n", newN, l[2:])
			case strings.HasPrefix(l, "  "):
				oldN, newN = oldN+1, newN+1
			default:
				t.Fatalf("%s: unexpected line %q in\n%s", c.Name, l, out.String())
			}
		}
		if hunks.String() != c.Hunks {
			t.Errorf("%s: configctl diff prints\n%s\nwant\n%s\n(output:\n%s)", c.Name, hunks.String(), c.Hunks, out.String())
		}
	}
}
