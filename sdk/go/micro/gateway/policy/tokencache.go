package policy

import (
	"container/list"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// tokenCacheSize is how many verified tokens a verifier remembers, and tokenCacheMaxLen the
// longest it remembers: at most a few MiB, whatever clients send.
const (
	tokenCacheSize   = 4096
	tokenCacheMaxLen = 2048
)

// tokenCache remembers the claims of the tokens whose signature verified, the most recently
// used ones, so that a client's next request with the same token skips the signature and the
// decoding: most of what authentication costs. Its claims are checked again at each use (exp,
// nbf, iss, aud), so a remembered token expires as it would otherwise. A verifier has its own:
// a new Config forgets every token.
type tokenCache struct {
	mu    sync.Mutex
	byTok map[string]*list.Element // of *cachedToken
	order list.List                // the most recently used first
}

type cachedToken struct {
	tok    string
	claims jwt.MapClaims
}

func newTokenCache() *tokenCache { return &tokenCache{byTok: map[string]*list.Element{}} }

// get returns the claims of tok when it verified before.
func (c *tokenCache) get(tok string) (jwt.MapClaims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byTok[tok]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedToken).claims, true
}

// add remembers that tok verified, with claims.
func (c *tokenCache) add(tok string, claims jwt.MapClaims) {
	if len(tok) > tokenCacheMaxLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byTok[tok]; ok {
		return
	}
	if c.order.Len() >= tokenCacheSize {
		e := c.order.Back()
		delete(c.byTok, e.Value.(*cachedToken).tok)
		c.order.Remove(e)
	}
	c.byTok[tok] = c.order.PushFront(&cachedToken{tok: tok, claims: claims})
}

// len is how many tokens c remembers.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
