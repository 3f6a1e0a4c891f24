package web

import (
	"testing"
	"time"
)

type fakePrincipal string

func (p fakePrincipal) Name() string               { return string(p) }
func (p fakePrincipal) Allows(perm, t string) bool { return true }

// TestSessionsExpire: a session ends after SessionIdle without use and
// after SessionMaxAge in any case; an ended or malformed id finds nothing.
func TestSessionsExpire(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions()
	s.now = func() time.Time { return now }

	idle := s.create(fakePrincipal("idle"))
	busy := s.create(fakePrincipal("busy"))
	if p, ok := s.get(idle); !ok || p.Name() != "idle" {
		t.Fatalf("new session: %v %v", p, ok)
	}
	// busy is used every 11 hours; idle is not.
	for i := 0; i < 14; i++ {
		now = now.Add(11 * time.Hour)
		if _, ok := s.get(busy); !ok {
			t.Fatalf("busy session ended after %v", time.Duration(i+1)*11*time.Hour)
		}
		if i == 1 {
			if _, ok := s.get(idle); ok {
				t.Fatal("idle session alive after 22h without use")
			}
		}
	}
	// 154 hours: past the absolute limit of 168 hours at the next use.
	now = now.Add(15 * time.Hour)
	if _, ok := s.get(busy); ok {
		t.Error("session alive after SessionMaxAge")
	}
	if s.len() != 0 {
		t.Errorf("%d sessions left in the table", s.len())
	}
	for _, id := range []string{"", "x", idle + "A", "not base64!"} {
		if _, ok := s.get(id); ok {
			t.Errorf("get(%q) found a session", id)
		}
	}
	ended := s.create(fakePrincipal("x"))
	s.end(ended)
	if _, ok := s.get(ended); ok {
		t.Error("an ended session is found")
	}
}
