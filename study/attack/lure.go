package attack

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/fields"
	"github.com/mismatch-rl/mismatch/rng"
)

// LureConfig shapes the lure, the attack's start=lure: an optimistic lie
// taught to the model where its held-out data cannot see it.
//
// The model's own imagination finds such places: from held-out states it
// rolls its mean prediction forward under uniformly random actions, and
// every imagined transition farther than Distance from all held-out
// transitions becomes a lure, its next state moved the fraction Pull of
// the way to the goal (the held-out next state of highest reward, the
// stillest of those within 0.01 of it). The model is then fine-tuned, all
// layers, on the held-out data plus the lures at a loss weight κ per lure,
// the largest of Weights whose model keeps the held-out NLL within the
// attack's tolerance. The likelihood barely notices; a planner, which
// searches exactly the action sequences that lead off the data, finds the
// lie and follows it.
type LureConfig struct {
	Starts int `yaml:"starts"` // held-out states imagined from (0: 2000)
	Steps  int `yaml:"steps"`  // imagined steps from each (0: 8)
	// Distance is in held-out standard deviations, Euclidean over
	// observation and action (0: 2).
	Distance float64 `yaml:"distance"`
	Pull     float64 `yaml:"pull"` // in (0, 1] (0: 0.2)
	// Weights are the κ tried, largest first (empty: 1, 0.3, 0.1, 0.03,
	// 0.01, 0.003, 0.001).
	Weights []float64 `yaml:"weights"`
	Epochs  int       `yaml:"epochs"` // fine-tuning passes (0: 20)
	LR      float64   `yaml:"lr"`     // fine-tuning Adam rate (0: 1e-3)
}

func (l LureConfig) withDefaults() LureConfig {
	if l.Starts == 0 {
		l.Starts = 2000
	}
	if l.Steps == 0 {
		l.Steps = 8
	}
	if l.Distance == 0 {
		l.Distance = 2
	}
	if l.Pull == 0 {
		l.Pull = 0.2
	}
	if len(l.Weights) == 0 {
		l.Weights = []float64{1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001}
	}
	if l.Epochs == 0 {
		l.Epochs = 20
	}
	if l.LR == 0 {
		l.LR = 1e-3
	}
	return l
}

func (l LureConfig) validate() error {
	var errs fields.Errors
	if l.Starts < 1 {
		errs.Add("starts", "is %d, want at least 1", l.Starts)
	}
	if l.Steps < 1 {
		errs.Add("steps", "is %d, want at least 1", l.Steps)
	}
	if l.Epochs < 1 {
		errs.Add("epochs", "is %d, want at least 1", l.Epochs)
	}
	if !(l.Distance > 0) || math.IsInf(l.Distance, 0) {
		errs.Add("distance", "is %g, want a finite distance > 0", l.Distance)
	}
	if !(l.Pull > 0 && l.Pull <= 1) {
		errs.Add("pull", "is %g, want it in (0, 1]", l.Pull)
	}
	if !(l.LR > 0) || math.IsInf(l.LR, 0) {
		errs.Add("lr", "is %g, want a finite positive rate", l.LR)
	}
	for i, w := range l.Weights {
		if !(w > 0) || math.IsInf(w, 0) {
			errs.Add(fmt.Sprintf("weights[%d]", i), "is %g, want a finite positive weight", w)
		}
	}
	return errs.Err()
}

// goalState returns the next state of held's transition of highest reward;
// among those within 0.01 of it, the one that changes its state least, so
// that a model pulled there stays there.
func goalState(held *data.Buffer) ([]float32, error) {
	if held.Len() == 0 {
		return nil, errors.New("attack: no held-out transitions to find a goal in")
	}
	od := held.ObsDim
	best := slices.Max(held.Reward)
	if math.IsNaN(float64(best)) {
		return nil, errors.New("attack: held-out rewards hold NaN")
	}
	move := func(i int) float64 {
		var s float64
		for j := 0; j < od; j++ {
			d := float64(held.Next[i*od+j] - held.Obs[i*od+j])
			s += d * d
		}
		return s
	}
	g := -1
	for i, r := range held.Reward {
		if r >= best-0.01 && (g < 0 || move(i) < move(g)) {
			g = i
		}
	}
	return slices.Clone(held.Next[g*od : (g+1)*od]), nil
}

// lures returns the lure transitions for model m.
func lures(m *dynamics.Model, held *data.Buffer, acts env.Box, l LureConfig, src *rng.Source) (*data.Buffer, error) {
	goal, err := goalState(held)
	if err != nil {
		return nil, err
	}
	od, ad, E, n := held.ObsDim, held.ActDim, m.Members(), l.Starts
	imagined := data.NewBuffer(od, ad)
	obs := make([]float32, n*od)
	for i := 0; i < n; i++ {
		k := src.IntN(held.Len())
		copy(obs[i*od:], held.Obs[k*od:(k+1)*od])
	}
	act := make([]float32, n*ad)
	next := make([]float32, n*od)
	for range l.Steps {
		uniformActions(act, acts, src)
		mean, _, err := moments(m, obs, act, n)
		if err != nil {
			return nil, err
		}
		clear(next)
		for e := 0; e < E; e++ {
			for i := range next {
				next[i] += mean[e*n*od+i] / float32(E)
			}
		}
		for i := 0; i < n; i++ {
			imagined.Add(obs[i*od:(i+1)*od], act[i*ad:(i+1)*ad], next[i*od:(i+1)*od], 0, false, false)
		}
		obs, next = next, obs
	}
	d := make([]float64, imagined.Len())
	if err := data.Distances(d, imagined, held, data.Scale(held), 0); err != nil {
		return nil, err
	}
	out := data.NewBuffer(od, ad)
	target := make([]float32, od)
	for i, di := range d {
		p := imagined.Next[i*od : (i+1)*od]
		if !(di > l.Distance) || !finite(p) {
			continue
		}
		for j := range target {
			target[j] = p[j] + float32(l.Pull)*(goal[j]-p[j])
		}
		out.Add(imagined.Obs[i*od:(i+1)*od], imagined.Act[i*ad:(i+1)*ad], target, 0, false, false)
	}
	return out, nil
}

// finite reports whether every value of x is neither NaN nor infinite.
func finite[T float32 | float64](x []T) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// plantLure returns model fine-tuned with the lures at the largest weight
// whose held-out NLL is at most limit, that weight and the number of lures.
func plantLure(ctx context.Context, model *dynamics.Model, held *data.Buffer, acts env.Box, l LureConfig, limit float64, seed uint64, workers int, logf func(string, ...any)) (*dynamics.Model, float64, int, error) {
	src := rng.New(seed).Named("lure")
	lure, err := lures(model, held, acts, l, src.Child(0))
	if err != nil {
		return nil, 0, 0, err
	}
	if lure.Len() == 0 {
		return nil, 0, 0, fmt.Errorf("attack: no imagined transition lies farther than %g from the held-out data; lower lure.distance", l.Distance)
	}
	train := data.NewBuffer(held.ObsDim, held.ActDim)
	if err := errors.Join(train.Append(held), train.Append(lure)); err != nil {
		return nil, 0, 0, err
	}
	weights := make([]float32, train.Len())
	for _, kappa := range slices.Backward(slices.Sorted(slices.Values(l.Weights))) {
		for i := range weights {
			weights[i] = 1
			if i >= held.Len() {
				weights[i] = float32(kappa)
			}
		}
		m := model.Clone()
		tr := dynamics.NewTrainer(m, workers)
		_, err := tr.Train(ctx, train, dynamics.TrainConfig{Epochs: l.Epochs, BatchSize: 32, LR: l.LR, NoBootstrap: true, KeepNormalizer: true, Weights: weights, Seed: src.Child(1).Uint64()})
		tr.Close()
		if err != nil {
			return nil, 0, 0, err
		}
		met, err := m.Evaluate(held, 1)
		if err != nil {
			return nil, 0, 0, err
		}
		logf("attack: lure weight %g over %d lures: held-out NLL %.4f (limit %.4f)", kappa, lure.Len(), met.NLL, limit)
		if met.NLL <= limit {
			return m, kappa, lure.Len(), nil
		}
	}
	return nil, 0, 0, fmt.Errorf("attack: no lure weight in %v keeps the held-out NLL within %.4f; try smaller weights or a larger lure.distance", l.Weights, limit)
}
