package kernel

// AdamUpdate applies one Adam step to p given gradient g and the moment
// estimates m and v, updated in place:
//
//	m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²;  p −= lr·m / (√v·rbc2 + eps)
//
// lr is the learning rate divided by the first moment's bias correction and
// rbc2 is 1/√(second moment's bias correction), as PyTorch computes them.
func AdamUpdate(p, g, m, v []float32, b1, b2, lr, rbc2, eps float32) {
	n := len(p)
	if len(g) < n || len(m) < n || len(v) < n {
		panic("kernel: AdamUpdate slices too short")
	}
	if n > 0 {
		adamUpdate(p, g[:n], m[:n], v[:n], b1, b2, lr, rbc2, eps)
	}
}

// AdamDecay is Decay(g, p, lambda) then AdamUpdate, the same numbers in one
// pass over the vectors, but g is left as it was.
func AdamDecay(p, g, m, v []float32, lambda, b1, b2, lr, rbc2, eps float32) {
	n := len(p)
	if len(g) < n || len(m) < n || len(v) < n {
		panic("kernel: AdamDecay slices too short")
	}
	if n > 0 {
		adamDecay(p, g[:n], m[:n], v[:n], lambda, b1, b2, lr, rbc2, eps)
	}
}

// Decay adds lambda·w to g: the gradient of the penalty ½·lambda·Σw².
func Decay(g, w []float32, lambda float32) {
	if len(g) < len(w) {
		panic("kernel: Decay slices too short")
	}
	if len(w) > 0 {
		decay(g[:len(w)], w, lambda)
	}
}

// adamOne is Adam's update of one element with gradient g, the formula
// adamUpdateGo and adamDecayGo share (as MM_ADAM_ONE in C).
func adamOne(p, m, v *float32, g, b1, b2, lr, rbc2, eps float32) {
	mj := b1**m + (1-b1)*g
	vj := b2**v + (1-b2)*g*g
	*m, *v = mj, vj
	*p -= lr * mj / (sqrtf(vj)*rbc2 + eps)
}

func adamUpdateGo(p, g, m, v []float32, b1, b2, lr, rbc2, eps float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for j, gj := range g {
		adamOne(&p[j], &m[j], &v[j], gj, b1, b2, lr, rbc2, eps)
	}
}

func adamDecayGo(p, g, m, v []float32, lambda, b1, b2, lr, rbc2, eps float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for j, gj := range g {
		// Rounded as decayGo rounds it: stored, then read.
		adamOne(&p[j], &m[j], &v[j], float32(gj+lambda*p[j]), b1, b2, lr, rbc2, eps)
	}
}

func decayGo(g, w []float32, lambda float32) {
	g = g[:len(w)]
	for j, x := range w {
		g[j] += lambda * x
	}
}
