package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// MaxApprovals bounds a policy's approvals.
const MaxApprovals = 10

// Policy is a prefix's approval policy: how many people other than its
// author must approve a request under the prefix before it is published,
// and whether the prefix takes changes only through requests (Require:
// the doors refuse direct writes and rollbacks, see Book.CheckDirect).
// The nearest policy applies: the one of the longest prefix that holds
// the request's scope (or the key written).
type Policy struct {
	Prefix    string `json:"-"` // canonical; "" is every key
	Approvals int    `json:"approvals"`
	Require   bool   `json:"require,omitempty"`
}

// policies is the record at keyspace.PoliciesKey: the policies by prefix.
type policies map[string]Policy

// Getter reads a key: audit.Store.
type Getter interface {
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
}

func (b *Book) policies(ctx context.Context) (policies, int64, error) { return loadPolicies(ctx, b.st) }

// loadPolicies reads the policies and their record's mod_rev.
func loadPolicies(ctx context.Context, st Getter) (policies, int64, error) {
	kv, err := st.Get(ctx, keyspace.PoliciesKey)
	if errors.Is(err, audit.ErrNotFound) {
		return policies{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	ps, err := parsePolicies(kv.Value)
	return ps, kv.ModRev, err
}

func parsePolicies(doc []byte) (policies, error) {
	ps := policies{}
	if err := json.Unmarshal(doc, &ps); err != nil {
		return nil, fmt.Errorf("%s: the policies do not parse: %w", keyspace.PoliciesKey, err)
	}
	for p, pol := range ps {
		pol.Prefix = p
		ps[p] = pol
	}
	return ps, nil
}

// Policies returns every policy, by prefix.
func (b *Book) Policies(ctx context.Context) ([]Policy, error) {
	ps, _, err := b.policies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, 0, len(ps))
	for _, p := range ps {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out, nil
}

// Policy returns the policy that applies to the canonical scope: the
// nearest one, or none (zero approvals; Prefix is then scope).
func (b *Book) Policy(ctx context.Context, scope string) (Policy, error) {
	ps, _, err := b.policies(ctx)
	if err != nil {
		return Policy{}, err
	}
	return ps.nearest(scope), nil
}

func (ps policies) nearest(scope string) Policy {
	best, found := "", false
	for p := range ps {
		if strings.HasPrefix(scope, p) && (!found || len(p) > len(best)) {
			best, found = p, true
		}
	}
	if !found {
		return Policy{Prefix: scope}
	}
	return ps[best]
}

// SetPolicy sets the policy of pol.Prefix, by actor for reason; a policy
// of zero approvals that does not require requests removes it (a policy of
// a shorter prefix then applies).
func (b *Book) SetPolicy(ctx context.Context, pol Policy, actor, reason string) (Policy, error) {
	p, err := keyspace.Prefix(pol.Prefix)
	if err != nil {
		return Policy{}, err
	}
	pol.Prefix = p
	if pol.Approvals < 0 || pol.Approvals > MaxApprovals {
		return Policy{}, Refuse(audit.ErrBadRequest, "approvals %d: want 0 to %d", pol.Approvals, MaxApprovals)
	}
	for try := 0; ; try++ {
		ps, modRev, err := b.policies(ctx)
		if err != nil {
			return Policy{}, err
		}
		if pol == (Policy{Prefix: p}) {
			delete(ps, p)
		} else {
			ps[p] = pol
		}
		doc, err := json.Marshal(ps)
		if err != nil {
			return Policy{}, err
		}
		op := audit.Put(keyspace.PoliciesKey, doc, "application/json")
		op.IfModRev = &modRev
		why := fmt.Sprintf("policy of %s: %d approval(s)", display(p), pol.Approvals)
		if pol.Require {
			why += ", changes only through requests"
		}
		if reason != "" {
			why += ": " + reason
		}
		_, err = b.st.Commit(own(ctx), audit.Txn{Actor: actor, Reason: why, Origin: "request", Ops: []audit.Op{op}})
		var ce *audit.ConflictError
		if errors.As(err, &ce) && try < maxRetries {
			continue
		}
		return pol, err
	}
}
