package main

import (
	"os"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/bench/internal/examplepb"
)

// hey is given the talk's JSON body, or the same request as protobuf from a file, and the
// token of the policy chain's row.
func TestHeyArgsSendEachStacksRequest(t *testing.T) {
	args, cleanup, err := heyArgs(stack{Name: "json"})
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if want := []string{"-m", "POST", "-T", "application/json", "-d", body}; !slices.Equal(args, want) {
		t.Fatalf("JSON: %q, want %q", args, want)
	}

	args, cleanup, err = heyArgs(stack{Name: "pb", Proto: true, Auth: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 8 || args[3] != "application/protobuf" || args[4] != "-D" || args[6] != "-H" {
		t.Fatalf("protobuf: %q", args)
	}
	b, err := os.ReadFile(args[5])
	if err != nil {
		t.Fatal(err)
	}
	var req examplepb.Request
	if err := proto.Unmarshal(b, &req); err != nil || req.Name != "hobo" {
		t.Fatalf("the body file: %q (%v)", b, err)
	}
	if len(args[7]) < len("Authorization: Bearer x.y.z") || args[7][:22] != "Authorization: Bearer " {
		t.Fatalf("header %q", args[7])
	}
	cleanup()
	if _, err := os.Stat(args[5]); !os.IsNotExist(err) {
		t.Fatalf("the body file outlives the case: %v", err)
	}
}
