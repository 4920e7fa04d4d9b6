package dynamics

// Memory estimates. They count the large buffers (weights, optimiser
// state, activations of many rows), not the small change, so that settings
// that cannot fit in memory are refused before anything is allocated.

// widths returns a model's input and output widths for spec.
func (c Config) widths(spec Spec) (in, out int) {
	out = spec.ObservationSpace().Dim()
	if c.Class.Probabilistic() {
		out *= 2
	}
	return spec.InputDim() + spec.ActionSpace().Dim(), out
}

// Bytes estimates the memory a model of c for spec holds: its weights.
func (c Config) Bytes(spec Spec) float64 {
	in, out := c.widths(spec)
	return 4 * float64(c.paramsF(in, out))
}

// TrainingBytes estimates the memory a model of c and its Trainer hold
// while training with minibatches of batch rows per member: weights,
// gradients, Adam's two moments and the early-stopping snapshot, the
// copies a checkpoint and the optimiser's state take while they are
// written, and the minibatch's activations.
func (c Config) TrainingBytes(spec Spec, batch int) float64 {
	in, out := c.widths(spec)
	var width float64
	for _, h := range c.Hidden {
		width += float64(h)
	}
	acts := 4 * 2 * float64(max(c.Members, 1)) * float64(batch) * (width + float64(in+out))
	return 8*4*c.paramsF(in, out) + acts
}

// PredictBytes estimates the buffers a Predictor holds to evaluate rows
// rows in all: inputs, outputs and the moments and noise drawn from them.
func (c Config) PredictBytes(spec Spec, rows int) float64 {
	in, out := c.widths(spec)
	od := spec.ObservationSpace().Dim()
	return 4 * float64(rows) * float64(in+out+3*od)
}

// paramsF is Params in float64, which absurd sizes cannot overflow.
func (c Config) paramsF(in, out int) float64 {
	var n float64
	prev := float64(in)
	for _, h := range c.Hidden {
		n += prev*float64(h) + float64(h)
		prev = float64(h)
	}
	n += prev*float64(out) + float64(out)
	return n * float64(max(c.Members, 1))
}
