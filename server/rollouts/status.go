package rollouts

import (
	"slices"

	"github.com/configd/configd/api"
	"github.com/configd/configd/rollout"
)

// maxBehind bounds the clients a status names as behind.
const maxBehind = 100

// Status returns how rec stands with clients (every replica's): of those
// that watch a key it changes, who is in the step, who applied the
// revision that brought them in (a reported revision at or past it), who
// rejects a new value (a rejection of one of its keys at or past that
// revision), and who is behind.
func Status(rec Record, clients []api.ClientStatus) api.RolloutStatus {
	r := rec.Rollout
	watching := Watching(r, clients)
	st := api.RolloutStatus{Clients: len(watching), Steps: make([]api.RolloutStepStatus, 0, r.Step+1)}
	for i := 0; i <= r.Step && i < len(r.Steps); i++ {
		st.Steps = append(st.Steps, api.RolloutStepStatus{Step: r.Steps[i].String(), Rev: r.StepRev(i, rec.Rev)})
	}
	running := rollout.Running(r.State)
	keys := r.Keys()
	for _, c := range watching {
		m := api.RolloutMember{Instance: c.Instance}
		step, in := r.Joined(identity(c))
		if !running || !in {
			st.Members = append(st.Members, m)
			continue
		}
		m.InStep, m.Step = true, step
		rev := st.Steps[step].Rev
		m.Applied = c.Rev >= rev
		m.Rejected = slices.ContainsFunc(c.Rejections, func(j api.ClientRejection) bool {
			return j.Rev >= rev && slices.Contains(keys, j.Key)
		})
		st.Members = append(st.Members, m)
		st.InStep++
		st.Steps[step].InStep++
		if m.Applied {
			st.Applied++
			st.Steps[step].Applied++
		} else if len(st.Behind) < maxBehind {
			st.Behind = append(st.Behind, c.Instance)
		}
		if m.Rejected {
			st.Rejected++
			st.Steps[step].Rejected++
		}
	}
	if st.InStep > 0 {
		st.RejectedPercent = 100 * float64(st.Rejected) / float64(st.InStep)
	}
	return st
}
