package dynamics

import (
	"errors"
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/env"
)

// Metrics are a model's scores on a dataset. Errors are measured on the
// prediction targets, which equal errors on the next observation.
type Metrics struct {
	N int // transitions scored
	// NLL is the mean negative log-likelihood per transition in nats under
	// the full Gaussian density (½·Σ_d [(y−μ)²/σ² + log σ² + log 2π]),
	// averaged over members. Deterministic models are scored with unit
	// variance, which ranks them as their squared error does.
	NLL float64
	// MixtureNLL scores the ensemble as a uniform mixture of its members.
	MixtureNLL float64
	// MSE is the mean squared error of the ensemble's mean prediction,
	// over transitions and dimensions; DimMSE splits it by dimension.
	MSE    float64
	DimMSE []float64
	// MemberMSE and MemberNLL score each member alone.
	MemberMSE []float64
	MemberNLL []float64
	// Coverage1 and Coverage2 are the fractions of predicted values whose
	// target lies within one and two standard deviations of the
	// ensemble's prediction (the members' mixture: its variance is the
	// mean of their variances plus the variance of their means); a
	// calibrated Gaussian covers 68.3% and 95.4%.
	Coverage1, Coverage2 float64
	// Disagreement is the mean standard deviation of the members' mean
	// predictions (zero for one network).
	Disagreement float64
}

// LogLikelihood is −NLL: the mean log-likelihood per transition.
func (m Metrics) LogLikelihood() float64 { return -m.NLL }

// Evaluate scores the model on every transition of buf.
func (m *Model) Evaluate(buf *data.Buffer, threads int) (Metrics, error) {
	p := m.NewPredictor(threads)
	defer p.Close()
	return m.evaluate(p, buf, nil)
}

// EvaluateWeighted scores the model with transition i weighted by w[i]
// (w ≥ 0, not all zero): every score is a weighted mean over transitions.
func (m *Model) EvaluateWeighted(buf *data.Buffer, w []float32, threads int) (Metrics, error) {
	if len(w) != buf.Len() {
		return Metrics{}, fmt.Errorf("dynamics: %d weights for %d transitions", len(w), buf.Len())
	}
	var sum float64
	for _, v := range w {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return Metrics{}, fmt.Errorf("dynamics: weight %g", v)
		}
		sum += float64(v)
	}
	if sum == 0 {
		return Metrics{}, errors.New("dynamics: every weight is zero")
	}
	p := m.NewPredictor(threads)
	defer p.Close()
	return m.evaluate(p, buf, w)
}

// evalChunk bounds the rows evaluated at once (times the members).
const evalChunk = 4096

var log2Pi = math.Log(2 * math.Pi)

func (m *Model) evaluate(p *Predictor, buf *data.Buffer, weights []float32) (Metrics, error) {
	if buf.ObsDim != m.obsDim || buf.ActDim != m.actDim {
		return Metrics{}, fmt.Errorf("dynamics: %d/%d-wide data for a %d/%d model", buf.ObsDim, buf.ActDim, m.obsDim, m.actDim)
	}
	n := buf.Len()
	if n == 0 {
		return Metrics{}, errors.New("dynamics: no transitions to evaluate")
	}
	E, od, ad := m.cfg.Members, m.obsDim, m.actDim
	met := Metrics{N: n, DimMSE: make([]float64, od), MemberMSE: make([]float64, E), MemberNLL: make([]float64, E)}
	obs := make([]float32, E*evalChunk*od)
	act := make([]float32, E*evalChunk*ad)
	y := make([]float32, evalChunk*od)
	nll := make([]float64, E)
	avg := make([]float64, od)
	sq := make([]float64, od)   // Σ_e μ², for the spread of the means
	aleo := make([]float64, od) // mean of the members' variances
	var wsum float64
	for c0 := 0; c0 < n; c0 += evalChunk {
		r := min(evalChunk, n-c0)
		for e := 0; e < E; e++ {
			copy(obs[e*r*od:(e+1)*r*od], buf.Obs[c0*od:(c0+r)*od])
			copy(act[e*r*ad:(e+1)*r*ad], buf.Act[c0*ad:(c0+r)*ad])
		}
		m.targets(y, buf.Obs[c0*od:], buf.Next[c0*od:], r)
		if err := p.forward(obs, act, r, nil, p.splitTask); err != nil {
			return Metrics{}, err
		}
		for i := 0; i < r; i++ {
			wi := 1.0
			if weights != nil {
				wi = float64(weights[c0+i])
			}
			wsum += wi
			clear(avg)
			clear(sq)
			clear(aleo)
			for e := 0; e < E; e++ {
				row := e*r + i
				var s, se float64
				for d := 0; d < od; d++ {
					mu := float64(p.mean[row*od+d])
					err := float64(y[i*od+d]) - mu
					avg[d] += mu / float64(E)
					sq[d] += mu * mu / float64(E)
					se += err * err
					if m.Head != nil {
						lv := float64(p.lv[row*od+d])
						s += err*err*math.Exp(-lv) + lv + log2Pi
						aleo[d] += math.Exp(lv) / float64(E)
					} else {
						s += err*err + log2Pi
						aleo[d] += 1 / float64(E)
					}
				}
				nll[e] = 0.5 * s
				met.MemberNLL[e] += wi * nll[e]
				met.MemberMSE[e] += wi * se / float64(od)
			}
			for d := 0; d < od; d++ {
				spread := max(sq[d]-avg[d]*avg[d], 0)
				sd := math.Sqrt(aleo[d] + spread)
				err := math.Abs(float64(y[i*od+d]) - avg[d])
				if err <= sd {
					met.Coverage1 += wi / float64(od)
				}
				if err <= 2*sd {
					met.Coverage2 += wi / float64(od)
				}
				met.Disagreement += wi * math.Sqrt(spread) / float64(od)
			}
			// −log((1/E)·Σ exp(−nll_e)), stably.
			lo := math.Inf(1)
			for _, v := range nll {
				lo = math.Min(lo, v)
			}
			var sum float64
			for _, v := range nll {
				sum += math.Exp(lo - v)
			}
			met.MixtureNLL += wi * (lo - math.Log(sum/float64(E)))
			for d := 0; d < od; d++ {
				err := float64(y[i*od+d]) - avg[d]
				met.DimMSE[d] += wi * err * err
			}
		}
	}
	fn := wsum
	met.Coverage1 /= fn
	met.Coverage2 /= fn
	met.Disagreement /= fn
	for e := 0; e < E; e++ {
		met.MemberNLL[e] /= fn
		met.MemberMSE[e] /= fn
		met.NLL += met.MemberNLL[e] / float64(E)
	}
	met.MixtureNLL /= fn
	for d := range met.DimMSE {
		met.DimMSE[d] /= fn
		met.MSE += met.DimMSE[d] / float64(od)
	}
	if math.IsNaN(met.NLL) || math.IsNaN(met.MSE) {
		return met, errors.New("dynamics: the model predicts NaN on this data")
	}
	return met, nil
}

// Errors returns, for every transition of buf, the squared error of the
// ensemble's mean prediction of the next observation, averaged over
// dimensions: what MSE averages over transitions.
func (m *Model) Errors(buf *data.Buffer, threads int) ([]float64, error) {
	if buf.ObsDim != m.obsDim || buf.ActDim != m.actDim {
		return nil, fmt.Errorf("dynamics: %d/%d-wide data for a %d/%d model", buf.ObsDim, buf.ActDim, m.obsDim, m.actDim)
	}
	p := m.NewPredictor(threads)
	defer p.Close()
	n, E, od, ad := buf.Len(), m.cfg.Members, m.obsDim, m.actDim
	out := make([]float64, n)
	obs := make([]float32, E*evalChunk*od)
	act := make([]float32, E*evalChunk*ad)
	mean := make([]float32, E*evalChunk*od)
	vari := make([]float32, E*evalChunk*od)
	for c0 := 0; c0 < n; c0 += evalChunk {
		r := min(evalChunk, n-c0)
		for e := 0; e < E; e++ {
			copy(obs[e*r*od:(e+1)*r*od], buf.Obs[c0*od:(c0+r)*od])
			copy(act[e*r*ad:(e+1)*r*ad], buf.Act[c0*ad:(c0+r)*ad])
		}
		if err := p.Moments(mean, vari, obs[:E*r*od], act[:E*r*ad], r, nil); err != nil {
			return nil, err
		}
		for i := 0; i < r; i++ {
			var se float64
			for d := 0; d < od; d++ {
				var mu float64
				for e := 0; e < E; e++ {
					mu += float64(mean[(e*r+i)*od+d]) / float64(E)
				}
				err := mu - float64(buf.Next[(c0+i)*od+d])
				se += err * err
			}
			out[c0+i] = se / float64(od)
		}
	}
	return out, nil
}

// OpenLoopError measures long-horizon accuracy along the buffer's
// episodes: from every step t with k recorded steps after it in its
// episode, the ensemble's mean prediction is rolled forward k steps with
// the recorded actions, feeding each prediction back as the next input.
// The result's element h−1 is the mean squared error (over starts and
// dimensions) of the h-step prediction.
func (m *Model) OpenLoopError(buf *data.Buffer, k, threads int) ([]float64, error) {
	ol, err := m.OpenLoop(buf, k, nil, threads)
	return ol.StateMSE, err
}

// OpenLoop is a model's accuracy over k steps along recorded episodes.
type OpenLoop struct {
	Starts int // steps with k recorded steps after them
	// StateMSE[h−1] is the mean squared error (over starts and
	// dimensions) of the h-step prediction.
	StateMSE []float64
	// ReturnError is the mean absolute error of the k-step predicted
	// return (the task's reward of the predicted transitions under the
	// recorded actions, summed) against the recorded rewards' sum: the
	// quantity a planner ranks action sequences by. NaN without a task.
	ReturnError float64
}

// OpenLoop rolls the ensemble's mean prediction k steps from every step
// of the buffer's episodes with k recorded steps after it, with the
// recorded actions, feeding each prediction back, and scores the states
// and, given the task, the returns it predicts (see OpenLoop).
func (m *Model) OpenLoop(buf *data.Buffer, k int, task env.Task, threads int) (OpenLoop, error) {
	res := OpenLoop{ReturnError: math.NaN()}
	if k < 1 {
		return res, fmt.Errorf("dynamics: horizon %d", k)
	}
	if buf.ObsDim != m.obsDim || buf.ActDim != m.actDim {
		return res, fmt.Errorf("dynamics: %d/%d-wide data for a %d/%d model", buf.ObsDim, buf.ActDim, m.obsDim, m.actDim)
	}
	var starts []int
	for _, ep := range buf.Episodes() {
		for t := ep.Start; t+k <= ep.End; t++ {
			starts = append(starts, t)
		}
	}
	if len(starts) == 0 {
		return res, fmt.Errorf("dynamics: no episode has %d steps", k)
	}
	p := m.NewPredictor(threads)
	defer p.Close()
	od, ad := m.obsDim, m.actDim
	res.Starts = len(starts)
	res.StateMSE = make([]float64, k)
	var retErr float64
	for c0 := 0; c0 < len(starts); c0 += evalChunk {
		ss := starts[c0:min(c0+evalChunk, len(starts))]
		r := len(ss)
		st := m.newMeanStepper(p, r)
		for i, t := range ss {
			copy(st.state[i*od:(i+1)*od], buf.Obs[t*od:(t+1)*od])
		}
		act := make([]float32, r*ad)
		prev := make([]float32, r*od)
		rew := make([]float32, r)
		pred := make([]float64, r) // predicted returns
		rec := make([]float64, r)  // recorded returns
		for h := 0; h < k; h++ {
			for i, t := range ss {
				copy(act[i*ad:(i+1)*ad], buf.Act[(t+h)*ad:(t+h+1)*ad])
			}
			copy(prev, st.state)
			if err := st.step(act); err != nil {
				return res, err
			}
			if task != nil {
				task.Reward(rew, prev, act, st.state)
			}
			for i, t := range ss {
				for d := 0; d < od; d++ {
					err := float64(st.state[i*od+d]) - float64(buf.Next[(t+h)*od+d])
					res.StateMSE[h] += err * err
				}
				pred[i] += float64(rew[i])
				rec[i] += float64(buf.Reward[t+h])
			}
		}
		for i := range ss {
			retErr += math.Abs(pred[i] - rec[i])
		}
	}
	for h := range res.StateMSE {
		res.StateMSE[h] /= float64(len(starts) * od)
	}
	if task != nil {
		res.ReturnError = retErr / float64(len(starts))
	}
	return res, nil
}

// PredictAlong rolls the ensemble's mean prediction from the first
// observation of buf through all of buf's actions, feeding each prediction
// back, and returns the predicted observations (buf.Len() × ObsDim): what
// the model believes happens along a recorded trajectory.
func (m *Model) PredictAlong(buf *data.Buffer) ([]float32, error) {
	if buf.ObsDim != m.obsDim || buf.ActDim != m.actDim {
		return nil, fmt.Errorf("dynamics: %d/%d-wide data for a %d/%d model", buf.ObsDim, buf.ActDim, m.obsDim, m.actDim)
	}
	n, od, ad := buf.Len(), m.obsDim, m.actDim
	if n == 0 {
		return nil, errors.New("dynamics: no transitions to predict along")
	}
	p := m.NewPredictor(1)
	defer p.Close()
	st := m.newMeanStepper(p, 1)
	copy(st.state, buf.Obs[:od])
	out := make([]float32, n*od)
	for t := 0; t < n; t++ {
		if err := st.step(buf.Act[t*ad : (t+1)*ad]); err != nil {
			return nil, err
		}
		copy(out[t*od:], st.state)
	}
	return out, nil
}

// meanStepper advances rows states by the ensemble's mean prediction.
type meanStepper struct {
	m                    *Model
	p                    *Predictor
	rows                 int
	state                []float32 // rows × ObsDim
	obs, act, mean, vari []float32
}

func (m *Model) newMeanStepper(p *Predictor, rows int) *meanStepper {
	E, od, ad := m.cfg.Members, m.obsDim, m.actDim
	return &meanStepper{m: m, p: p, rows: rows, state: make([]float32, rows*od),
		obs: make([]float32, E*rows*od), act: make([]float32, E*rows*ad),
		mean: make([]float32, E*rows*od), vari: make([]float32, E*rows*od)}
}

// step moves every state one step under act (rows × ActDim).
func (s *meanStepper) step(act []float32) error {
	E, od, ad, r := s.m.cfg.Members, s.m.obsDim, s.m.actDim, s.rows
	for e := 0; e < E; e++ {
		copy(s.obs[e*r*od:(e+1)*r*od], s.state)
		copy(s.act[e*r*ad:(e+1)*r*ad], act[:r*ad])
	}
	if err := s.p.Moments(s.mean, s.vari, s.obs, s.act, r, nil); err != nil {
		return err
	}
	for i := 0; i < r*od; i++ {
		var sum float64
		for e := 0; e < E; e++ {
			sum += float64(s.mean[e*r*od+i])
		}
		s.state[i] = float32(sum / float64(E))
	}
	return nil
}
