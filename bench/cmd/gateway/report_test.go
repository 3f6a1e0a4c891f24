package main

import (
	"strings"
	"testing"
)

// The TPS ratio pairs the runs of a round: a round when the machine was busy lowers both.
func TestTPSRatioIsTheMedianOfTheRoundsRatios(t *testing.T) {
	runs := map[string][]result{
		baseline:        {{TPS: 1000}, {TPS: 4000}, {TPS: 2000}},
		stackPolicyBare: {{TPS: 1300}, {TPS: 4800}, {TPS: 2200}}, // 1.3, 1.2, 1.1
		stackPolicy:     {{TPS: 1196}, {TPS: 4320}, {TPS: 2046}}, // 0.92, 0.9, 0.93 of it
	}
	r := newReport(stacks, runs, 0, 50, 3)
	if q, ok := r.tpsRatio(stackPolicyBare, baseline); !ok || q != 1.2 {
		t.Fatalf("ratio %v %v, want 1.2 (the medians' would be 2200/2000)", q, ok)
	}
	if _, ok := r.tpsRatio("nope", baseline); ok {
		t.Fatal("a ratio of a stack without runs")
	}
	if got := r.chainCost(); !strings.Contains(got, "TPS -8.0%") {
		t.Fatalf("chain cost %q, want -8.0%% (0.92, the median)", got)
	}
	if body := r.body("##"); !strings.Contains(body, "| 2200 | 1.20× |") {
		t.Fatalf("the protobuf row:\n%s", body)
	}
}
