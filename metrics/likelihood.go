package metrics

import (
	"context"

	"github.com/mismatch-rl/mismatch/dynamics"
)

// likelihood is the paper's measure and its relatives: the members' mean
// one-step NLL, the ensemble's mixture NLL and the mean prediction's
// squared error, on every dataset.
type likelihood struct{}

func init() { Register(likelihood{}) }

func (likelihood) Name() string { return "likelihood" }
func (likelihood) Doc() string {
	return "one-step NLL (members' mean), mixture NLL and MSE of the ensemble mean, per dataset"
}

func (likelihood) Score(ctx context.Context, m *dynamics.Model, d *Data) (map[string]float64, error) {
	return perDataset(ctx, m, d, func(out map[string]float64, name string, met dynamics.Metrics) {
		out[Column("nll", name)] = met.NLL
		out[Column("mixture-nll", name)] = met.MixtureNLL
		out[Column("mse", name)] = met.MSE
	})
}

// perDataset evaluates m on every dataset of d (each metric on its own, so
// that its cost is its own and it can run alone) and lets fill turn each
// evaluation into columns.
func perDataset(ctx context.Context, m *dynamics.Model, d *Data, fill func(out map[string]float64, name string, met dynamics.Metrics)) (map[string]float64, error) {
	out := map[string]float64{}
	for _, ds := range d.Datasets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		met, err := m.Evaluate(ds.Buf, d.Threads)
		if err != nil {
			return nil, err
		}
		fill(out, ds.Name, met)
	}
	return out, nil
}
