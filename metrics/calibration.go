package metrics

import (
	"context"
	"math"

	"github.com/mismatch-rl/mismatch/dynamics"
)

// calibration measures whether the ensemble's predicted uncertainty
// matches its errors, and how much its members disagree.
type calibration struct{}

func init() { Register(calibration{}) }

// Coverages of the 1σ and 2σ intervals of a Gaussian.
const cover1, cover2 = 0.6826894921370859, 0.9544997361036416

func (calibration) Name() string { return "calibration" }
func (calibration) Doc() string {
	return "calibration error (mean distance of the 1σ and 2σ intervals' coverage from a Gaussian's) and the members' disagreement, per dataset"
}

func (calibration) Score(ctx context.Context, m *dynamics.Model, d *Data) (map[string]float64, error) {
	return perDataset(ctx, m, d, func(out map[string]float64, name string, met dynamics.Metrics) {
		out[Column("calibration-error", name)] = (math.Abs(met.Coverage1-cover1) + math.Abs(met.Coverage2-cover2)) / 2
		out[Column("disagreement", name)] = met.Disagreement
	})
}
