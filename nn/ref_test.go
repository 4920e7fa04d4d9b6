package nn

import "math"

// This file holds an independent float64 model of the package's maths, kept
// as plain loops so it can be checked by eye: the reference that forward
// passes are compared with and that finite differences are taken of.

type refNet struct {
	cfg    Config
	params []float64 // Params's layout
}

func refFromMLP(m *MLP) *refNet {
	p := make([]float64, len(m.params))
	for i, v := range m.params {
		p[i] = float64(v)
	}
	return &refNet{cfg: m.Config(), params: p}
}

func refAct(a Activation, slope, x float64) float64 {
	switch a {
	case Swish:
		return x / (1 + math.Exp(-x))
	case Tanh:
		return math.Tanh(x)
	case ReLU:
		return math.Max(x, 0)
	case LeakyReLU:
		if x > 0 {
			return x
		}
		return slope * x
	}
	return x
}

// forward evaluates member e on one input row.
func (r *refNet) forward(e int, x []float64) []float64 {
	w := r.cfg.widths()
	off := 0
	h := x
	for l := 0; l+1 < len(w); l++ {
		in, out := w[l], w[l+1]
		W := r.params[off : off+r.cfg.Members*in*out]
		B := r.params[off+r.cfg.Members*in*out : off+r.cfg.Members*(in*out+out)]
		off += r.cfg.Members * (in*out + out)
		next := make([]float64, out)
		for j := 0; j < out; j++ {
			s := B[e*out+j]
			for i := 0; i < in; i++ {
				s += h[i] * W[e*in*out+i*out+j]
			}
			if l+2 < len(w) {
				s = refAct(r.cfg.Activation, float64(r.cfg.slope()), s)
			}
			next[j] = s
		}
		h = next
	}
	return h
}

// forwardAll evaluates x (Members×rows×In) for every member.
func (r *refNet) forwardAll(x []float32, rows int) []float64 {
	var out []float64
	for e := 0; e < r.cfg.Members; e++ {
		for b := 0; b < rows; b++ {
			row := make([]float64, r.cfg.In)
			for i := range row {
				row[i] = float64(x[(e*rows+b)*r.cfg.In+i])
			}
			out = append(out, r.forward(e, row)...)
		}
	}
	return out
}

func refSoftplus(x float64) float64 { return math.Log1p(math.Exp(-math.Abs(x))) + math.Max(x, 0) }

func refClamp(raw, hi, lo float64) float64 {
	lv := hi - refSoftplus(hi-raw)
	return lo + refSoftplus(lv-lo)
}

// refGaussianLoss is Gaussian.Loss written out, bounds given explicitly.
func refGaussianLoss(out []float64, y, w []float32, members, rows, d int, hi, lo []float64) float64 {
	var loss float64
	c := 1 / float64(rows*d)
	for i := 0; i < members*rows; i++ {
		wi := 1.0
		if w != nil {
			wi = float64(w[i])
		}
		for j := 0; j < d; j++ {
			lv := refClamp(out[i*2*d+d+j], hi[j], lo[j])
			e := out[i*2*d+j] - float64(y[i*d+j])
			loss += c * wi * (e*e*math.Exp(-lv) + lv)
		}
	}
	return loss
}

func refMSE(out []float64, y, w []float32, members, rows, d int) float64 {
	var loss float64
	c := 1 / float64(rows*d)
	for i := 0; i < members*rows; i++ {
		wi := 1.0
		if w != nil {
			wi = float64(w[i])
		}
		for j := 0; j < d; j++ {
			e := out[i*d+j] - float64(y[i*d+j])
			loss += c * wi * e * e
		}
	}
	return loss
}

// refDecay is Σ_l ½·λ_l·‖W_l‖².
func (r *refNet) refDecay(lambda []float32) float64 {
	w := r.cfg.widths()
	off := 0
	var pen float64
	for l := 0; l+1 < len(w); l++ {
		nw := r.cfg.Members * w[l] * w[l+1]
		for _, v := range r.params[off : off+nw] {
			pen += 0.5 * float64(lambda[l]) * v * v
		}
		off += nw + r.cfg.Members*w[l+1]
	}
	return pen
}
