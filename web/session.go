package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes: a session ends after SessionIdle without a request,
// and SessionMaxAge after the login whatever happens.
const (
	SessionIdle   = 12 * time.Hour
	SessionMaxAge = 7 * 24 * time.Hour
	// sessionCookie names the session's cookie (Path {base}, HttpOnly,
	// SameSite=Strict, Secure over TLS).
	sessionCookie = "configd_session"
	// sessionBytes is the size of a session id: 256 random bits.
	sessionBytes = 32
	// maxSessions caps the sessions kept in memory; the oldest is ended
	// to make room. Only holders of a valid token can create one.
	maxSessions = 10000
)

// SessionTable keeps the UI's login sessions (WithSessions). The default
// is a table in the process's memory; a cluster of replicas shares one
// (package server/uisessions) so that a session works on every replica.
// Its methods are called concurrently.
type SessionTable interface {
	// Create opens a session for p and returns its id, for the cookie
	// (NewSessionID makes one). It keeps what Authenticator.Recheck
	// needs to find p's token again, never the token's secret; an error
	// means no session was opened, and the login says so.
	Create(ctx context.Context, p Principal) (id string, err error)
	// Get returns the principal of the live session of id and notes its
	// use; ok is false when there is none (unknown, malformed, expired or
	// ended). It is called on every request and must not wait on the
	// network.
	Get(id string) (p Principal, ok bool)
	// End ends the session of id, if any. The session is over on this
	// process when End returns, even with an error (which says that
	// others may not know yet).
	End(ctx context.Context, id string) error
}

// WithSessions replaces the in-memory session table by t, such as one
// that every replica of a cluster shares.
func WithSessions(t SessionTable) Option { return func(o *options) { o.sessions = t } }

// NewSessionID returns a new random session id, for the cookie, and its
// key: the SHA-256 of its bytes, under which a table keeps the session so
// that it holds nothing a cookie could be made from.
func NewSessionID() (id string, key [sha256.Size]byte) {
	b := make([]byte, sessionBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b), sha256.Sum256(b)
}

// SessionKey returns the key of a session id (see NewSessionID), or false
// when id is not one.
func SessionKey(id string) ([sha256.Size]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(b) != sessionBytes {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(b), true
}

// session is one login: the principal of the token it was opened with
// (not the token's secret), checked again on every request.
type session struct {
	principal Principal
	created   time.Time
	lastSeen  time.Time
}

// sessions is the in-memory session table. Sessions are keyed by the
// SHA-256 of their id, so that the table holds nothing a cookie could be
// made from. They do not survive a restart: users log in again.
type sessions struct {
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions() *sessions {
	return &sessions{now: time.Now, m: map[[sha256.Size]byte]*session{}}
}

var _ SessionTable = (*sessions)(nil)

// Create opens a session in memory; it never fails.
func (s *sessions) Create(_ context.Context, p Principal) (string, error) { return s.create(p), nil }

// Get is get.
func (s *sessions) Get(id string) (Principal, bool) { return s.get(id) }

// End ends a session in memory; it never fails.
func (s *sessions) End(_ context.Context, id string) error { s.end(id); return nil }

// create opens a session for p and returns its id, for the cookie.
func (s *sessions) create(p Principal) string {
	id, key := NewSessionID()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.m) >= maxSessions {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.created.Before(at) {
				oldest, at = k, v.created
			}
		}
		delete(s.m, oldest)
	}
	s.m[key] = &session{principal: p, created: now, lastSeen: now}
	return id
}

// get returns the live session of id and notes its use; an expired one is
// ended. ok is false when there is no live session.
func (s *sessions) get(id string) (p Principal, ok bool) {
	k, valid := SessionKey(id)
	if !valid {
		return nil, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, found := s.m[k]
	if !found {
		return nil, false
	}
	if expired(ss, now) {
		delete(s.m, k)
		return nil, false
	}
	ss.lastSeen = now
	return ss.principal, true
}

// end deletes the session of id, if any.
func (s *sessions) end(id string) {
	if k, ok := SessionKey(id); ok {
		s.mu.Lock()
		delete(s.m, k)
		s.mu.Unlock()
	}
}

// len is how many sessions the table holds (tests).
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) >= SessionIdle || now.Sub(ss.created) >= SessionMaxAge
}

// sweepLocked ends the expired sessions; s.mu is held.
func (s *sessions) sweepLocked(now time.Time) {
	for k, ss := range s.m {
		if expired(ss, now) {
			delete(s.m, k)
		}
	}
}
