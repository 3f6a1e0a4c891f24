package main_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/sdk/go/config"
)

// sdkClientEnv makes the test binary an SDK client (sdkClient): its value
// is the client's instance name. rolloutLabelsEnv holds its zone label,
// rolloutRejectEnv a value of app/limits its Validate refuses.
const (
	sdkClientEnv     = "ROLLOUT_TEST_INSTANCE"
	rolloutZoneEnv   = "ROLLOUT_TEST_ZONE"
	rolloutRejectEnv = "ROLLOUT_TEST_REJECT"
)

// sdkClient runs a config SDK client that watches app/ as instance
// $ROLLOUT_TEST_INSTANCE of zone $ROLLOUT_TEST_ZONE, and prints "rev N:
// limits=V" at the start and after every update, until SIGTERM.
func sdkClient() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c, err := config.New(ctx, config.WithPrefix("app"), config.WithInstance(os.Getenv(sdkClientEnv)),
		config.WithLabels(map[string]string{"zone": os.Getenv(rolloutZoneEnv)}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	if bad := os.Getenv(rolloutRejectEnv); bad != "" {
		c.Validate("limits", func(v config.Value) error {
			if v.String("") == bad {
				return errors.New("limits " + bad + " is too low for this service")
			}
			return nil
		})
	}
	w, err := c.Watch()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { <-ctx.Done(); w.Stop() }()
	fmt.Printf("rev %d: limits=%s\n", c.Rev(), c.Get("limits").String(""))
	for {
		u, err := w.NextUpdate()
		if errors.Is(err, config.ErrStopped) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("rev %d: limits=%s\n", u.Rev, u.Value.Get("limits").String(""))
	}
}

// fleetClient is one SDK client process of the rollout test.
type fleetClient struct {
	name, zone string
	p          *configdtest.Process
}

var revLine = regexp.MustCompile(`(?m)^rev (\d+): limits=(.*)$`)

// at waits until c has printed app/limits at a revision of at least rev
// (each print wakes the wait), and fails unless it printed want there.
func (c *fleetClient) at(t *testing.T, rev int64, want string) {
	t.Helper()
	deadline := time.After(configdtest.WaitLimit)
	for {
		out, more := c.p.Log.Snapshot()
		for _, m := range revLine.FindAllStringSubmatch(out, -1) {
			if r, _ := strconv.ParseInt(m[1], 10, 64); r >= rev {
				if m[2] != want {
					t.Fatalf("%s (zone %s, bucket %v) at rev %s: limits=%s, want %s\n%s", c.name, c.zone, rollout.Bucket(c.name), m[1], m[2], want, out)
				}
				return
			}
		}
		select {
		case <-more:
		case <-c.p.Exited():
			t.Fatalf("%s exited:\n%s", c.name, out)
		case <-deadline:
			t.Fatalf("%s did not reach rev %d:\n%s", c.name, rev, out)
		}
	}
}

// saw reports whether c ever printed limits=v.
func (c *fleetClient) saw(v string) bool {
	return strings.Contains(c.p.Log.String(), "limits="+v+"\n")
}

// TestRolloutReachesItsStepAloneAndSurvivesAKill runs the issue's
// rollouts with real processes: configd, configctl and SDK clients that
// declare an instance and a zone. A 10% step reaches exactly the clients
// whose instance hashes below 10, and no other client ever sees the new
// value; configd killed (-9) mid-rollout and started again goes on where
// it was; promote reaches everyone; a label step's abort returns its
// clients to the old value; and a client whose Validate rejects the new
// value makes the rollout abort by itself with --abort-on-errors.
func TestRolloutReachesItsStepAloneAndSurvivesAKill(t *testing.T) {
	dataDir := t.TempDir()
	startD := func(addr string) *configdtest.Process {
		cmd := exec.Command(configdBin, "--data-dir", dataDir, "--http-addr", addr)
		cmd.Env = cleanEnv()
		p := configdtest.Spawn(t, cmd)
		p.Listening()
		return p
	}
	d := startD("127.0.0.1:0")
	addr := d.Addr
	must(t, addr, "", "set", "app/limits", "1")

	// Ten clients: three whose instance hashes into the 10% step, seven
	// that do not; two of the seven in zone eu-1.
	var in, out []string
	for i := 0; len(in) < 3 || len(out) < 7; i++ {
		name := fmt.Sprintf("pod-%d/orders", i)
		if rollout.Bucket(name) < 10 && len(in) < 3 {
			in = append(in, name)
		} else if rollout.Bucket(name) >= 10 && len(out) < 7 {
			out = append(out, name)
		}
	}
	start := func(name, zone, reject string) *fleetClient {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(cleanEnv(), "CONFIGD_ADDR="+addr, sdkClientEnv+"="+name, rolloutZoneEnv+"="+zone, rolloutRejectEnv+"="+reject)
		c := &fleetClient{name: name, zone: zone, p: configdtest.Spawn(t, cmd)}
		c.p.WaitLog(revLine)
		return c
	}
	var hashedIn, hashedOut, eu []*fleetClient
	for _, n := range in {
		hashedIn = append(hashedIn, start(n, "us-1", ""))
	}
	for i, n := range out {
		zone := "us-1"
		if i < 2 {
			zone = "eu-1"
		}
		c := start(n, zone, "")
		hashedOut = append(hashedOut, c)
		if zone == "eu-1" {
			eu = append(eu, c)
		}
	}
	all := append(append([]*fleetClient(nil), hashedIn...), hashedOut...)
	// tick writes a key every client watches and returns its revision:
	// once a client has printed it, it has seen everything before.
	tick := 0
	put := func() int64 {
		tick++
		o := must(t, addr, "", "set", "app/tick", strconv.Itoa(tick))
		rev, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(o, "rev ")), 10, 64)
		if err != nil {
			t.Fatalf("set printed %q", o)
		}
		return rev
	}
	expect := func(rev int64, in []*fleetClient, inValue, outValue string) {
		t.Helper()
		for _, c := range all {
			want := outValue
			if slices.Contains(in, c) {
				want = inValue
			}
			c.at(t, rev, want)
		}
	}
	// Every client has reported (a report follows each change of its copy).
	expect(put(), nil, "", "1")
	configdtest.Eventually(t, "every client reported", func() bool {
		o, _, _ := configctl(t, addr, "clients", "app/")
		return strings.Count(o, "/orders") == len(all)
	})

	// A 10% step: exactly the hashed clients see the new value.
	must(t, addr, "", "propose", "app/", "-f", writeFile(t, "set:\n  app/limits: '2'\n"))
	o := must(t, addr, "", "rollout", "1", "--to", "10%", "--then", "100%")
	if !regexp.MustCompile(`^rollout 1: step 1/2 \(10%\): \d+ of 3 clients applied rev \d+, 0 rejected\n$`).MatchString(o) {
		t.Fatalf("rollout printed %q", o)
	}
	expect(put(), hashedIn, "2", "1")
	if _, errOut, code := configctl(t, addr, "set", "app/limits", "9"); code != 4 || !strings.Contains(errOut, "app/limits is in rollout 1") {
		t.Fatalf("a direct write during the rollout: exit %d, %s", code, errOut)
	}

	// configd killed mid-rollout, started again on its address.
	d.Signal(syscall.SIGKILL)
	<-d.Exited()
	d = startD(addr)
	expect(put(), hashedIn, "2", "1")
	if o := must(t, addr, "", "rollout", "show", "1"); !strings.HasPrefix(o, "rollout 1: step 1/2 (10%)") {
		t.Fatalf("after the restart:\n%s", o)
	}
	for _, c := range hashedOut {
		if c.saw("2") {
			t.Fatalf("%s, outside the step, saw the new value:\n%s", c.name, c.p.Log)
		}
	}

	// Promote reaches everyone; complete writes it for good.
	must(t, addr, "", "rollout", "promote", "1")
	expect(put(), nil, "", "2")
	must(t, addr, "", "rollout", "complete", "1")
	must(t, addr, "2", "get", "app/limits")
	expect(put(), nil, "", "2")

	// A label step, aborted: its clients go back to the old value.
	must(t, addr, "", "propose", "app/", "-f", writeFile(t, "set:\n  app/limits: '3'\n"))
	must(t, addr, "", "rollout", "2", "--to", "zone=eu-1")
	expect(put(), eu, "3", "2")
	must(t, addr, "", "rollout", "abort", "2")
	expect(put(), nil, "", "2")

	// A client that rejects the new value aborts the rollout by itself.
	bad := start("pod-bad/orders", "eu-1", "4")
	all = append(all, bad)
	eu = append(eu, bad)
	expect(put(), nil, "", "2")
	must(t, addr, "", "propose", "app/", "-f", writeFile(t, "set:\n  app/limits: '4'\n"))
	must(t, addr, "", "rollout", "3", "--to", "zone=eu-1", "--then", "100%", "--bake", "1h", "--abort-on-errors", "10%")
	d.WaitLog(regexp.MustCompile(`rollouts: abort.* rollout=3 .*1 of the 3 client\(s\) in the step reject the new values`))
	expect(put(), nil, "", "2")
	if bad.saw("4") {
		t.Fatalf("the client that rejects 4 applied it:\n%s", bad.p.Log)
	}
	if o := must(t, addr, "", "rollout", "show", "3"); !strings.HasPrefix(o, "rollout 3: aborted") {
		t.Fatalf("rollout 3:\n%s", o)
	}
}

// writeFile writes a change file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := t.TempDir() + "/change.yaml"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
