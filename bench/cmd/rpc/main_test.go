package main

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestMessageSize(t *testing.T) {
	n := proto.Size(message())
	t.Logf("the request is %d bytes encoded", n)
	if n < 580 || n > 620 {
		t.Fatalf("the request is %d bytes encoded, want about 600", n)
	}
}

// TestQuick makes a few hundred checked calls (proto.Equal on each answer) on every peer.
func TestQuick(t *testing.T) {
	for _, name := range peerNames {
		t.Run(name, func(t *testing.T) {
			p, err := newPeer(name, peerOptions{pool: 16, strict: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			if err := quick(p, 300, 16); err != nil {
				t.Fatal(err)
			}
			var ws *wrapSet
			switch name {
			case peerWrapped:
				ws = wrapAll
				// Both sides traced every call.
				if n := ws.spansEnded.Load(); n != 600 {
					t.Errorf("%d spans ended, want 600 (a client and a server span per call)", n)
				}
			case peerSampled:
				ws = wrapSampled
				// About 1% of the calls traced, on both sides: a server span only for a sampled
				// client span, so the count is even. 300 calls at 1% trace 3 on average, more
				// than 20 with a probability below 1e-10.
				if n := ws.spansEnded.Load(); n%2 != 0 || n > 40 {
					t.Errorf("%d spans ended, want an even number up to 40 (1%% of 300 calls, both sides)", n)
				}
			default:
				return
			}
			mfs, err := ws.metrics.Gather()
			if err != nil {
				t.Fatal(err)
			}
			counted := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					if c := m.GetCounter(); c != nil {
						counted[mf.GetName()] += c.GetValue()
					}
				}
			}
			if counted["micro_client_requests_total"] != 300 || counted["micro_server_requests_total"] != 300 {
				t.Errorf("metrics counted %v, want 300 client and 300 server requests", counted)
			}
		})
	}
}
