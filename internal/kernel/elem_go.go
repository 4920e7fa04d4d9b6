package kernel

import "math"

// The Go element-wise kernels: the backend of purego builds and the
// reference the C kernels are tested against. They avoid math.Exp, which
// costs several times more than a float32 polynomial.

const (
	log2e  = 1.44269504088896341
	ln2Hi  = 0.693359375
	ln2Lo  = -2.12194440e-4
	expMin = -87
	expMax = 88
	// tanhSmall is where tanh switches from its series to the exp form; the
	// series' first omitted term is below float32 resolution there.
	tanhSmall = 0.25
)

// expf is exp for float32 by range reduction x = n·ln2 + r, |r| ≤ ln2/2, and
// a degree-6 polynomial for exp(r). Comparisons rather than min/max keep NaN.
func expf(x float32) float32 {
	if x < expMin {
		x = expMin
	} else if x > expMax {
		x = expMax
	}
	// +128.5 then −128 rounds to nearest with a truncating conversion.
	n := int32(x*log2e+128.5) - 128
	fn := float32(n)
	r := x - fn*ln2Hi - fn*ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// log1pf is log(1+u) for u in [0, 1], as 2·atanh(s) with s = (m−1)/(m+1)
// for m = 1+u, or m = (1+u)/2 above √2. s is formed from u directly, so no
// precision is lost rounding 1+u.
func log1pf(u float32) float32 {
	s := u / (2 + u)
	var e float32
	if u > math.Sqrt2-1 {
		s = (u - 1) / (u + 3)
		e = 1
	}
	s2 := s * s
	q := float32(1.0 / 11)
	q = q*s2 + 1.0/9
	q = q*s2 + 1.0/7
	q = q*s2 + 1.0/5
	q = q*s2 + 1.0/3
	q = q*s2 + 1
	return e*math.Ln2 + 2*s*q
}

func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }

func softplusf(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	r := log1pf(expf(-a))
	if x > 0 {
		r += x
	}
	if x != x {
		return x
	}
	return r
}

func tanhf(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	var t float32
	if a < tanhSmall {
		a2 := a * a
		p := float32(62.0 / 2835)
		p = p*a2 - 17.0/315
		p = p*a2 + 2.0/15
		p = p*a2 - 1.0/3
		t = a + a*a2*p
	} else {
		e := expf(-2 * a)
		t = (1 - e) / (1 + e)
	}
	if x < 0 {
		return -t
	}
	return t
}

func actf(act Act, slope, v float32) float32 {
	switch act {
	case ReLU:
		if v > 0 {
			return v
		}
		if v != v {
			return v
		}
		return 0
	case LeakyReLU:
		if v > 0 {
			return v
		}
		return slope * v
	case Tanh:
		return tanhf(v)
	case Swish:
		return v * sigmoidf(v)
	}
	return v
}

func biasActGo(act Act, slope float32, z, h, bias []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		zr := z[r*cols : r*cols+cols]
		hr := h[r*cols : r*cols+cols]
		for j, b := range bias[:cols] {
			v := zr[j] + b
			zr[j] = v
			hr[j] = actf(act, slope, v)
		}
	}
}

func actBackwardGo(act Act, slope float32, dz, dh, z, h []float32) {
	dh, z, h = dh[:len(dz)], z[:len(dz)], h[:len(dz)]
	switch act {
	case Identity:
		copy(dz, dh)
	case ReLU:
		for i, v := range z {
			if v > 0 {
				dz[i] = dh[i]
			} else {
				dz[i] = 0
			}
		}
	case LeakyReLU:
		for i, v := range z {
			if v > 0 {
				dz[i] = dh[i]
			} else {
				dz[i] = slope * dh[i]
			}
		}
	case Tanh:
		for i, y := range h {
			dz[i] = dh[i] * (1 - y*y)
		}
	case Swish:
		// With s = sigmoid(z) and h = z·s: h' = s + z·s·(1−s) = s + h·(1−s).
		for i, v := range z {
			s := sigmoidf(v)
			dz[i] = dh[i] * (s + h[i]*(1-s))
		}
	}
}

func expGo(dst, x []float32) {
	for i, v := range x[:len(dst)] {
		dst[i] = expf(v)
	}
}

func sigmoidGo(dst, x []float32) {
	for i, v := range x[:len(dst)] {
		dst[i] = sigmoidf(v)
	}
}

func softplusGo(dst, x []float32) {
	for i, v := range x[:len(dst)] {
		dst[i] = softplusf(v)
	}
}

// boundf is LogVarBound's formula for one value, as mm_logvar_block
// computes it.
func boundf(raw, hi, lo float32) float32 {
	return softplusf(hi-softplusf(hi-raw)-lo) + lo
}

func logVarBoundGo(lv, raw, hi, lo []float32) {
	d := len(hi)
	for i := range lv {
		lv[i] = boundf(raw[i], hi[i%d], lo[i%d])
	}
}

// softplusSigmoidf is log(1 + eˣ) and 1/(1 + e⁻ˣ) from one e^−|x|, as
// mm_gauss_loss_block computes them.
func softplusSigmoidf(x float32) (softplus, sigmoid float32) {
	a := x
	if a < 0 {
		a = -a
	}
	e := expf(-a)
	softplus = log1pf(e)
	if x > 0 {
		softplus += x
	}
	if x >= 0 {
		return softplus, 1 / (1 + e)
	}
	return softplus, e / (1 + e)
}

func gaussLossGo(dOut, dHi, dLo, out, y, w, hi, lo []float32, c float64) float64 {
	d := len(hi)
	var loss float64
	for r := 0; r < len(y)/d; r++ {
		wr := float32(c)
		if w != nil {
			wr = float32(c * float64(w[r]))
		}
		o := out[2*r*d:]
		for j := range d {
			sp1, s1 := softplusSigmoidf(hi[j] - o[d+j])
			sp2, s2 := softplusSigmoidf(hi[j] - sp1 - lo[j])
			lv := sp2 + lo[j]
			iv := expf(-lv)
			diff := o[j] - y[r*d+j]
			q := diff * diff * iv
			loss += float64(wr * (q + lv))
			dOut[2*r*d+j] = wr * 2 * diff * iv
			dlv := wr * (1 - q)
			dOut[2*r*d+d+j] = dlv * (s2 * s1)
			if dHi != nil {
				dHi[j] += dlv * (s2 * (1 - s1))
			}
			if dLo != nil {
				dLo[j] += dlv * (1 - s2)
			}
		}
	}
	return loss
}

func colSumsGo(s, x []float32) {
	clear(s)
	for r := 0; r+len(s) <= len(x); r += len(s) {
		for j, v := range x[r : r+len(s)] {
			s[j] += v
		}
	}
}

func gaussSampleGo(sample, out, hi, lo, eps []float32) {
	d := len(hi)
	for r := 0; r < len(sample)/d; r++ {
		o := out[2*r*d : 2*(r+1)*d]
		for j := range d {
			i := r*d + j
			sample[i] = o[j] + expf(0.5*boundf(o[d+j], hi[j], lo[j]))*eps[i]
		}
	}
}

// sincosGo rounds math.Sincos, which mm_sincos matches.
func sincosGo(sin, cos, x []float32) {
	for i, v := range x {
		s, c := math.Sincos(float64(v))
		sin[i], cos[i] = float32(s), float32(c)
	}
}

func standardizeGo(x, mean, std []float32) {
	d := len(mean)
	for r := 0; r < len(x); r += d {
		row := x[r : r+d]
		for j, v := range row {
			row[j] = (v - mean[j]) / std[j]
		}
	}
}

// normalsGo is mm_normals with the math package's functions.
func normalsGo(dst []float32, key uint64) {
	for i := 0; 2*i < len(dst); i++ {
		c, s := normalPair(key, i)
		dst[2*i] = float32(c)
		if 2*i+1 < len(dst) {
			dst[2*i+1] = float32(s)
		}
	}
}

// normalPair is pair i of stream key in float64.
func normalPair(key uint64, i int) (c, s float64) {
	h := mix64(key + uint64(i+1)*0x9e3779b97f4a7c15)
	u := (float64(h>>32) + 0.5) * 0x1p-32
	r := math.Sqrt(-2 * math.Log(u))
	s, c = math.Sincos(2 * math.Pi * float64(uint32(h)) * 0x1p-32)
	return r * c, r * s
}

// mix64 is SplitMix64's output function.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func sqrtf(x float32) float32 { return float32(math.Sqrt(float64(x))) }
