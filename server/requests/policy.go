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
// author must approve a request under the prefix before it is published.
// The nearest policy applies: the one of the longest prefix that holds
// the request's scope.
type Policy struct {
	Prefix    string `json:"prefix"` // canonical; "" is every key
	Approvals int    `json:"approvals"`
}

// policies is the record at keyspace.PoliciesKey: approvals by prefix.
type policies map[string]int

func (b *Book) policies(ctx context.Context) (policies, int64, error) {
	kv, err := b.st.Get(ctx, keyspace.PoliciesKey)
	if errors.Is(err, audit.ErrNotFound) {
		return policies{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	ps := policies{}
	if err := json.Unmarshal(kv.Value, &ps); err != nil {
		return nil, 0, fmt.Errorf("%s: the policies do not parse: %w", keyspace.PoliciesKey, err)
	}
	return ps, kv.ModRev, nil
}

// Policies returns every policy, by prefix.
func (b *Book) Policies(ctx context.Context) ([]Policy, error) {
	ps, _, err := b.policies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, 0, len(ps))
	for p, n := range ps {
		out = append(out, Policy{Prefix: p, Approvals: n})
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
	return Policy{Prefix: best, Approvals: ps[best]}
}

// SetPolicy sets prefix's policy to approvals, by actor for reason;
// zero removes it (a policy of a shorter prefix then applies).
func (b *Book) SetPolicy(ctx context.Context, prefix string, approvals int, actor, reason string) (Policy, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return Policy{}, err
	}
	if approvals < 0 || approvals > MaxApprovals {
		return Policy{}, refuse(audit.ErrBadRequest, "approvals %d: want 0 to %d", approvals, MaxApprovals)
	}
	for try := 0; ; try++ {
		ps, modRev, err := b.policies(ctx)
		if err != nil {
			return Policy{}, err
		}
		if approvals == 0 {
			delete(ps, p)
		} else {
			ps[p] = approvals
		}
		doc, err := json.Marshal(ps)
		if err != nil {
			return Policy{}, err
		}
		op := audit.Put(keyspace.PoliciesKey, doc, "application/json")
		op.IfModRev = &modRev
		why := fmt.Sprintf("policy of %s: %d approval(s)", display(p), approvals)
		if reason != "" {
			why += ": " + reason
		}
		_, err = b.st.Commit(own(ctx), audit.Txn{Actor: actor, Reason: why, Origin: "request", Ops: []audit.Op{op}})
		var ce *audit.ConflictError
		if errors.As(err, &ce) && try < maxRetries {
			continue
		}
		return Policy{Prefix: p, Approvals: approvals}, err
	}
}
