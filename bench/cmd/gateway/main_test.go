package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain runs a role of a stack when the harness started this test binary as one.
func TestMain(m *testing.M) {
	if args := os.Getenv(roleEnv); args != "" {
		if err := runRole(strings.Fields(args)); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuick makes checked calls through every stack, each a backend and a gateway process.
func TestQuick(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stacks {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := quickCheck(ctx, self, s, 200, 8); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseHey(t *testing.T) {
	out := `
Summary:
  Total:	5.0030 secs
  Slowest:	0.1015 secs
  Fastest:	0.0002 secs
  Average:	0.0072 secs
  Requests/sec:	13192.0450

  Total data:	1319200 bytes
  Size/request:	20 bytes

Response time histogram:
  0.000 [1]	|
  0.010 [50000]	|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■

Latency distribution:
  10% in 0.0010 secs
  25% in 0.0030 secs
  50% in 0.0056 secs
  75% in 0.0090 secs
  90% in 0.0133 secs
  95% in 0.0200 secs
  99% in 0.0359 secs

Details (average, fastest, slowest):
  DNS+dialup:	0.0000 secs, 0.0002 secs, 0.1015 secs

Status code distribution:
  [200]	65960 responses
  [503]	3 responses

Error distribution:
  [2]	Post "http://127.0.0.1:1/example/call": dial tcp 127.0.0.1:1: connect: connection refused
`
	r, err := parseHey(out)
	if err != nil {
		t.Fatal(err)
	}
	want := result{Avg: 7200 * time.Microsecond, Median: 5600 * time.Microsecond, Max: 101500 * time.Microsecond,
		Min: 200 * time.Microsecond, P90: 13300 * time.Microsecond, P99: 35900 * time.Microsecond, TPS: 13192.045, OK: 65960, Failed: 5}
	if r != want {
		t.Fatalf("got %+v,\nwant %+v", r, want)
	}
	if _, err := parseHey("Summary:\n  Total: 1 secs\n"); err == nil {
		t.Fatal("a truncated report parsed")
	}
}
