package rollout

import (
	"fmt"
	"testing"
	"time"
)

func TestParseStepReadsPercentagesAndSelectors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "10%", want: "10%"},
		{in: " 12.5 % ", want: "12.5%"},
		{in: "100%", want: "100%"},
		{in: "zone=eu-1", want: "zone=eu-1"},
		{in: "zone=eu-1, service=orders", want: "service=orders,zone=eu-1"},
		{in: "0%", bad: true},
		{in: "-5%", bad: true},
		{in: "101%", bad: true},
		{in: "NaN%", bad: true},
		{in: "ten%", bad: true},
		{in: "zone", bad: true},
		{in: "=x", bad: true},
		{in: "", bad: true},
	} {
		s, err := ParseStep(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseStep(%q) = %v, want an error", tc.in, s)
			}
			continue
		}
		if err != nil || s.String() != tc.want {
			t.Errorf("ParseStep(%q) = %q, %v; want %q", tc.in, s, err, tc.want)
		}
	}
}

func TestBucketIsStickyAndSpreadsInstances(t *testing.T) {
	if Bucket("pod-7/orders") != Bucket("pod-7/orders") {
		t.Fatal("an instance moved bucket")
	}
	// FNV-1a of the name, fixed forever: a change here moves every
	// client of every running rollout.
	if got := Bucket("pod-1/orders"); got != Bucket("pod-1/orders") || got < 0 || got >= 100 {
		t.Fatalf("Bucket = %v", got)
	}
	in := 0
	for i := range 10000 {
		if (Step{Percent: 10}).Match(Identity{Instance: fmt.Sprintf("pod-%d/orders", i)}) {
			in++
		}
	}
	if in < 900 || in > 1100 {
		t.Fatalf("10%% of 10,000 instances: %d in the step", in)
	}
}

func TestMembershipGrowsWithTheStepsAndEndsWithTheRollout(t *testing.T) {
	eu := Step{Selector: map[string]string{"zone": "eu-1"}}
	r := &Rollout{Steps: []Step{eu, {Percent: 50}, {Percent: 100}}, Phase: Phase{State: StateActive}}
	euClient := Identity{Instance: "a", Labels: map[string]string{"zone": "eu-1", "service": "orders"}}
	var low, high Identity
	for i := 0; low.Instance == "" || high.Instance == ""; i++ {
		id := Identity{Instance: fmt.Sprintf("us-%d", i), Labels: map[string]string{"zone": "us-1"}}
		if Bucket(id.Instance) < 50 {
			low = id
		} else {
			high = id
		}
	}
	check := func(name string, id Identity, want bool) {
		t.Helper()
		if got := r.In(id); got != want {
			t.Errorf("%s: %s in = %v, want %v", name, id.Instance, got, want)
		}
	}
	check("step 1", euClient, true)
	check("step 1", low, false)
	r.From, r.Step = r.Phase, 1
	check("step 2", euClient, true)
	check("step 2", low, true)
	check("step 2", high, false)
	if r.WasIn(low) || !r.WasIn(euClient) {
		t.Error("WasIn does not read From")
	}
	r.From, r.Step = r.Phase, 2
	check("step 3", high, true)
	check("step 3 without an instance", Identity{}, true)
	r.From, r.State = r.Phase, StatePaused
	check("paused", high, true)
	r.From, r.State = r.Phase, StateAborted
	check("aborted", euClient, false)
	if !r.WasIn(euClient) {
		t.Error("an abort's record should say the client was in")
	}
}

func TestCheckRefusesWhatCannotRun(t *testing.T) {
	ok := Rollout{Steps: []Step{{Percent: 10}}, Changes: []Change{{Key: "app/x"}}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Rollout){
		"no steps":      func(r *Rollout) { r.Steps = nil },
		"no changes":    func(r *Rollout) { r.Changes = nil },
		"key twice":     func(r *Rollout) { r.Changes = append(r.Changes, Change{Key: "app/x"}) },
		"bad percent":   func(r *Rollout) { r.Steps = []Step{{Percent: 150}} },
		"abort 200%":    func(r *Rollout) { r.AbortOnErrors = 200 },
		"negative bake": func(r *Rollout) { r.Bake = -time.Second },
		"query alone":   func(r *Rollout) { r.AbortQuery = "up == 0" },
	} {
		r := ok
		mut(&r)
		if err := r.Check(); err == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
}

func TestARecordRoundTrips(t *testing.T) {
	r := &Rollout{ID: 3, Scope: "app/", Steps: []Step{{Percent: 10}}, Bake: time.Minute,
		Changes: []Change{{Key: "app/x", Old: &Value{Value: []byte("1")}, New: &Value{Value: []byte("2")}}},
		Phase:   Phase{State: StateActive}, From: Phase{}}
	got, err := Decode(r.Encode())
	if err != nil || got.ID != 3 || got.Bake != time.Minute || string(got.Changes[0].New.Value) != "2" || got.State != StateActive {
		t.Fatalf("Decode(Encode) = %+v, %v", got, err)
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Fatal("Decode took a broken record")
	}
}
