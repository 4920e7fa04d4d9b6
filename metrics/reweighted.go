package metrics

import (
	"context"
	"math"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
)

// reweighted is the paper's mitigation used as an evaluation: the NLL with
// each transition weighted by its closeness to the expert's trajectory
// (exponential weights, as re-weighted training uses them).
type reweighted struct{}

func init() { Register(reweighted{}) }

func (reweighted) Name() string { return "reweighted" }
func (reweighted) Doc() string {
	return "NLL weighted by each transition's closeness to the expert trajectory (exponential weights), per dataset"
}

func (reweighted) Score(ctx context.Context, m *dynamics.Model, d *Data) (map[string]float64, error) {
	out := map[string]float64{}
	if d.Expert == nil || d.Expert.Len() == 0 {
		return out, nil
	}
	for _, ds := range d.Datasets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := data.Weights(data.Exponential, ds.Buf, d.Expert, max(d.Threads, 1))
		if err != nil {
			return nil, err
		}
		var sum float64
		for _, v := range w {
			sum += float64(v)
		}
		if sum == 0 {
			// Every transition as far from the expert as the farthest.
			out[Column("reweighted-nll", ds.Name)] = math.NaN()
			continue
		}
		met, err := m.EvaluateWeighted(ds.Buf, w, d.Threads)
		if err != nil {
			return nil, err
		}
		out[Column("reweighted-nll", ds.Name)] = met.NLL
	}
	return out, nil
}
