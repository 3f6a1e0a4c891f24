package apierror

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// rowRE is a row of docs/api.md's table of errors.
var rowRE = regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([a-z_]+)` \\| `([A-Z_]+)` \\|")

// TestTheDocsListEveryCodeWithItsAnswers: docs/api.md's table of errors
// has a row for every code, with the HTTP status and the gRPC code the
// doors answer with, and no row for a code that does not exist.
func TestTheDocsListEveryCodeWithItsAnswers(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range rowRE.FindAllStringSubmatch(string(doc), -1) {
		status, _ := strconv.Atoi(m[1])
		code, grpc := m[2], m[3]
		seen[code] = true
		if _, ok := answers[code]; !ok {
			t.Errorf("docs/api.md lists %s, which is no error code", code)
			continue
		}
		if Status(code) != status {
			t.Errorf("%s: docs say %d, the doors answer %d", code, status, Status(code))
		}
		if want := strings.ToUpper(GRPCCode(code).String()); grpcName(GRPCCode(code)) != grpc {
			t.Errorf("%s: docs say gRPC %s, the doors answer %s", code, grpc, want)
		}
	}
	for _, code := range Codes() {
		if !seen[code] {
			t.Errorf("docs/api.md has no row for %s", code)
		}
	}
}

// grpcName is a gRPC code as the docs spell it (INVALID_ARGUMENT).
func grpcName(c codes.Code) string {
	return strings.ToUpper(regexp.MustCompile(`([a-z])([A-Z])`).ReplaceAllString(c.String(), "${1}_${2}"))
}

func TestNewRefusesAnUnknownCode(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with an unknown code did not panic")
		}
	}()
	New("no_such_code", "x")
}
