package policy

// ClientBuckets is how many clients have a rate limit bucket, for tests.
func (p *Policy) ClientBuckets() int {
	if l := p.cur.Load().limits; l != nil && l.clients != nil {
		return l.clients.len()
	}
	return 0
}
