package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
)

// listed returns the client named instance as d lists it under prefix,
// or false.
func (d *testConfigd) listed(t testing.TB, prefix, instance string) (api.ClientStatus, bool) {
	t.Helper()
	cs, err := d.clients.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Instance == instance {
			return c, true
		}
	}
	return api.ClientStatus{}, false
}

// awaitListed waits until d lists instance under prefix as cond wants.
func (d *testConfigd) awaitListed(t testing.TB, prefix, instance, what string, cond func(api.ClientStatus) bool) api.ClientStatus {
	t.Helper()
	var got api.ClientStatus
	configdtest.Eventually(t, what, func() bool {
		c, ok := d.listed(t, prefix, instance)
		got = c
		return ok && cond(c)
	})
	return got
}

// TestClientReportsItsIdentityLabelsAndAppliedRevision: over both
// transports, configd lists a client under its instance with its labels,
// what it watches, and the revision it applied, which follows the writes.
func TestClientReportsItsIdentityLabelsAndAppliedRevision(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := startConfigd(t)
			d.put("app/a", "1")
			labels := map[string]string{"service": "orders", "zone": "eu-1"}
			c := connect(t, []string{d.addr}, append([]Option{WithPrefix("app"), WithInstance("orders-7f9c"), WithLabels(labels)}, tr.opts...)...)
			got := d.awaitListed(t, "app/", "orders-7f9c", "the client's first report", func(s api.ClientStatus) bool { return s.Rev == c.Rev() })
			if !maps.Equal(got.Labels, labels) || !slices.Equal(got.Prefixes, []string{"app/"}) || got.Behind != 0 || got.Replica != "test" {
				t.Fatalf("listed as %+v", got)
			}
			rev := d.put("app/a", "2")
			d.awaitListed(t, "app/", "orders-7f9c", "the applied revision", func(s api.ClientStatus) bool { return s.Rev == rev })
			if _, ok := d.listed(t, "db/", "orders-7f9c"); ok {
				t.Fatal("a client of app/ is listed under db/")
			}
		})
	}
}

// limitsRule is a Validate function: app/limits must be JSON with rps >= 1.
func limitsRule(v Value) error {
	var l struct{ RPS int }
	if err := v.Scan(&l); err != nil {
		return fmt.Errorf("cannot parse: %w", err)
	}
	if l.RPS < 1 {
		return errors.New("rps must be >= 1")
	}
	return nil
}

// rps is a limits value's rps, or 0.
func rps(v Value) int {
	var l struct{ RPS int }
	_ = v.Scan(&l)
	return l.RPS
}

// TestValidateRejectsAValueKeepsTheLastGoodOneAndReportsIt: a value the
// Validate function refuses is not applied (Get and the watchers keep the
// last good one) and configd lists the rejection with its key and
// revision; the next good value is applied and clears it. A value that
// does not parse is rejected the same way.
func TestValidateRejectsAValueKeepsTheLastGoodOneAndReportsIt(t *testing.T) {
	d := startConfigd(t)
	d.commit(audit.Put("app/limits", []byte(`{"rps": 5}`), api.TypeJSON), audit.Put("app/name", []byte("shop"), ""))
	c := connect(t, []string{d.addr}, WithPrefix("app"), WithInstance("orders-1"))
	c.Validate("limits", limitsRule)
	w, err := c.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	bad := d.commit(audit.Put("app/limits", []byte(`{"rps": -1}`), api.TypeJSON), audit.Put("app/name", []byte("shop2"), ""))
	waitRev(t, c, bad)
	if got := rps(c.Get("limits")); got != 5 {
		t.Fatalf("after a rejected value, limits.rps = %d, want the last good 5", got)
	}
	if u := next(t, w); u.Rev != bad || !slices.Equal(keysOf(u), []string{"name=shop2"}) {
		t.Fatalf("the watcher got rev %d %v, want rev %d [name=shop2] (not the rejected value)", u.Rev, keysOf(u), bad)
	}
	if got := c.Rejections(); len(got) != 1 || got[0].Key != "limits" || got[0].Rev != bad || got[0].Err != "rps must be >= 1" {
		t.Fatalf("Rejections: %+v", got)
	}
	s := d.awaitListed(t, "app/", "orders-1", "the rejection", func(s api.ClientStatus) bool { return len(s.Rejections) == 1 })
	if j := s.Rejections[0]; j.Key != "app/limits" || j.Rev != bad || j.Error != "rps must be >= 1" || s.Rev != bad {
		t.Fatalf("listed as %+v", s)
	}

	unparsable := d.commit(audit.Put("app/limits", []byte(`{"rps": "many"}`), api.TypeJSON))
	waitRev(t, c, unparsable)
	d.awaitListed(t, "app/", "orders-1", "the unparsable value's rejection", func(s api.ClientStatus) bool {
		return len(s.Rejections) == 1 && s.Rejections[0].Rev == unparsable
	})
	if got := rps(c.Get("limits")); got != 5 {
		t.Fatalf("after an unparsable value, limits.rps = %d, want 5", got)
	}

	good := d.commit(audit.Put("app/limits", []byte(`{"rps": 7}`), api.TypeJSON))
	if u := next(t, w); u.Rev != good || rps(u.Value.Get("limits")) != 7 {
		t.Fatalf("the watcher got rev %d %v, want rev %d with rps 7", u.Rev, keysOf(u), good)
	}
	if got := c.Rejections(); len(got) != 0 {
		t.Fatalf("Rejections after a good value: %+v", got)
	}
	d.awaitListed(t, "app/", "orders-1", "the rejection cleared", func(s api.ClientStatus) bool { return len(s.Rejections) == 0 && s.Rev == good })
}

// TestValidateChecksTheCurrentValueAndSnapshots: Validate checks the
// value the client holds already (reported, but kept: there is none
// better), and a rejected value in a fresh snapshot keeps the last good
// one too. A panicking Validate function is a rejection.
func TestValidateChecksTheCurrentValueAndSnapshots(t *testing.T) {
	d := startConfigd(t)
	cur := d.commit(audit.Put("app/limits", []byte(`{"rps": 0}`), api.TypeJSON))
	c := connect(t, []string{d.addr}, WithPrefix("app"))
	c.Validate("limits", limitsRule)
	if got := c.Rejections(); len(got) != 1 || got[0].Rev != cur {
		t.Fatalf("Rejections of the current value: %+v", got)
	}
	if !c.Get("limits").Exists() {
		t.Fatal("the current value, rejected, was dropped")
	}
	c.Validate("name", func(Value) error { panic("boom") })
	rev := d.put("app/name", "x")
	waitRev(t, c, rev)
	if c.Get("name").Exists() {
		t.Fatal("a value whose Validate function panicked was applied")
	}
	if got := c.Rejections(); len(got) != 2 || got[1].Key != "name" || got[1].Err != "panic: boom" {
		t.Fatalf("Rejections: %+v", got)
	}
}

// TestCloseTellsConfigdTheClientIsGone: Close reports the client gone,
// and configd stops listing it at once.
func TestCloseTellsConfigdTheClientIsGone(t *testing.T) {
	d := startConfigd(t)
	d.put("app/a", "1")
	c := connect(t, []string{d.addr}, WithInstance("leaving"))
	d.awaitListed(t, "", "leaving", "the client's report", func(api.ClientStatus) bool { return true })
	c.Close()
	if s, ok := d.listed(t, "", "leaving"); ok {
		t.Fatalf("still listed after Close: %+v", s)
	}
}

// TestWithoutReportsIsNotListed: WithoutReports keeps the client out of
// configd's list.
func TestWithoutReportsIsNotListed(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr}, WithInstance("quiet"), WithoutReports())
	other := connect(t, []string{d.addr}, WithInstance("loud"))
	rev := d.put("app/a", "1")
	waitRev(t, c, rev)
	d.awaitListed(t, "", "loud", "the other client's report", func(s api.ClientStatus) bool { return s.Rev == other.Rev() })
	if _, ok := d.listed(t, "", "quiet"); ok {
		t.Fatal("a client WithoutReports is listed")
	}
}

// TestDefaultInstanceAndLabels: the instance is CONFIGD_INSTANCE, else
// the pod's (or host's) name and the service; CONFIGD_LABELS declares
// labels that WithLabels overrides key by key; bad ones are refused.
func TestDefaultInstanceAndLabels(t *testing.T) {
	t.Setenv(EnvPodName, "orders-7f9c-x2")
	t.Setenv(EnvLabels, "zone=eu-1, tier=web")
	o, err := buildOptions([]Option{WithLabels(map[string]string{"service": "orders", "tier": "api"})})
	if err != nil {
		t.Fatal(err)
	}
	if o.instance != "orders-7f9c-x2/orders" || !maps.Equal(o.labels, map[string]string{"service": "orders", "zone": "eu-1", "tier": "api"}) {
		t.Fatalf("instance %q, labels %v", o.instance, o.labels)
	}
	t.Setenv(EnvInstance, "from-env")
	if o, _ := buildOptions(nil); o.instance != "from-env" {
		t.Fatalf("instance %q, want from-env", o.instance)
	}
	if o, _ := buildOptions([]Option{WithInstance("mine")}); o.instance != "mine" {
		t.Fatalf("instance %q, want mine", o.instance)
	}
	t.Setenv(EnvLabels, "zone")
	if _, err := buildOptions(nil); err == nil {
		t.Fatal("CONFIGD_LABELS=zone was taken")
	}
	t.Setenv(EnvLabels, "")
	if _, err := buildOptions([]Option{WithLabels(map[string]string{"": "x"})}); err == nil {
		t.Fatal("a label with an empty key was taken")
	}
}

// TestPackageLevelValidate: config.Validate guards the default client's
// copy as Client.Validate does.
func TestPackageLevelValidate(t *testing.T) {
	resetDefault(t)
	d := startConfigd(t)
	d.put("app/mode", "on")
	if err := Init(WithAddress(d.addr), WithLogger(discard()), WithInstance("default-1")); err != nil {
		t.Fatal(err)
	}
	if err := Validate("app/mode", func(v Value) error {
		if s := v.String(""); s != "on" && s != "off" {
			return fmt.Errorf("mode %q: want on or off", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bad := d.put("app/mode", "maybe")
	c, _ := defaultClient()
	waitRev(t, c, bad)
	if got := Get("app/mode").String(""); got != "on" {
		t.Fatalf("app/mode = %q, want the last good on", got)
	}
	d.awaitListed(t, "app/", "default-1", "the rejection", func(s api.ClientStatus) bool {
		return len(s.Rejections) == 1 && s.Rejections[0].Rev == bad
	})
}

// TestAClientOfAnEmptyStoreIsListed: a client at revision 0 (configd's
// store is empty) reports too.
func TestAClientOfAnEmptyStoreIsListed(t *testing.T) {
	d := startConfigd(t)
	connect(t, []string{d.addr}, WithInstance("early"))
	d.awaitListed(t, "", "early", "the client at revision 0", func(s api.ClientStatus) bool { return s.Rev == 0 })
}
