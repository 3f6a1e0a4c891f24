package policy

// ClientBuckets is how many clients have a rate limit bucket, for tests.
func (p *Policy) ClientBuckets() int {
	if l := p.cur.Load().limits; l != nil && l.clients != nil {
		return l.clients.len()
	}
	return 0
}

// TokensRemembered is how many verified tokens the policy in force remembers, for tests.
func (p *Policy) TokensRemembered() int {
	if v := p.cur.Load().jwt; v != nil {
		return v.cache.len()
	}
	return 0
}
