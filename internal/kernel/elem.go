package kernel

// Act names an activation function.
type Act uint8

// The activations of the numeric core.
const (
	Identity Act = iota
	ReLU
	LeakyReLU // slope given per call
	Tanh
	Swish // x·sigmoid(x), also called SiLU
)

// BiasAct adds bias to every row of the rows×cols matrix z (in place) and
// writes act(z) to h. h may be z itself, for inference; training keeps both
// to differentiate. slope is LeakyReLU's slope for negative inputs.
func BiasAct(act Act, slope float32, z, h, bias []float32, rows, cols int) {
	n := rows * cols
	if len(z) < n || len(h) < n || len(bias) < cols {
		panic("kernel: BiasAct slices too short")
	}
	if n == 0 {
		return
	}
	biasAct(act, slope, z[:n], h[:n], bias[:cols], rows, cols)
}

// ActBackward sets dz[i] = dh[i]·act'(z[i]), given h = act(z). dz may be dh.
func ActBackward(act Act, slope float32, dz, dh, z, h []float32) {
	n := len(dz)
	if len(dh) < n || len(z) < n || len(h) < n {
		panic("kernel: ActBackward slices too short")
	}
	if n == 0 {
		return
	}
	actBackward(act, slope, dz, dh[:n], z[:n], h[:n])
}

// Exp sets dst[i] = exp(x[i]). Inputs are clamped to [-87, 88], the range
// where float32 exp is finite and normal; NaN stays NaN.
func Exp(dst, x []float32) {
	if len(x) < len(dst) {
		panic("kernel: Exp slices too short")
	}
	if len(dst) > 0 {
		expVec(dst, x[:len(dst)])
	}
}

// Sigmoid sets dst[i] = 1/(1+exp(-x[i])).
func Sigmoid(dst, x []float32) {
	if len(x) < len(dst) {
		panic("kernel: Sigmoid slices too short")
	}
	if len(dst) > 0 {
		sigmoidVec(dst, x[:len(dst)])
	}
}

// Sincos sets sin[i] and cos[i] to the sine and cosine of x[i] (radians),
// the float32 roundings of math.Sincos's results but for rare ties; ±Inf
// and NaN give NaN. The slices must have one length.
func Sincos(sin, cos, x []float32) {
	if len(sin) != len(x) || len(cos) != len(x) {
		panic("kernel: Sincos slices of different lengths")
	}
	if len(x) > 0 {
		sincosVec(sin, cos, x)
	}
}

// LogVarBound sets lv[i] to the raw log-variance raw[i] softly bounded by
// its column's hi and lo, for rows of len(hi) values, as PETS bounds it: hi
// − softplus(hi − raw), then lo + softplus(that − lo). lv may be raw; lv
// and raw have one length, a multiple of len(hi); lo has len(hi) values.
func LogVarBound(lv, raw, hi, lo []float32) {
	checkRows("LogVarBound", len(lv), len(raw), len(lv), hi, lo)
	if len(lv) > 0 {
		logVarBound(lv, raw, hi, lo)
	}
}

// GaussianSample writes into sample draws of Gaussians given as rows of
// out: each row of out holds len(hi) means and then as many raw
// log-variances, and sample[i] = mean + σ·eps[i], σ = exp(lv/2), lv the
// log-variance LogVarBound makes of the raw one. sample and eps have one
// length, a multiple of len(hi); out twice that; lo has len(hi) values.
func GaussianSample(sample, out, hi, lo, eps []float32) {
	checkRows("GaussianSample", len(sample), len(out)/2, len(eps), hi, lo)
	if len(out)%2 != 0 {
		panic("kernel: GaussianSample slices of mismatched lengths")
	}
	if len(sample) > 0 {
		gaussSample(sample, out, hi, lo, eps)
	}
}

// ColSums sets s[j] to the sum of column j of x, rows of len(s) values
// (a bias's gradient), adding the rows in order: the bits of a scalar
// loop's sums. len(x) is a multiple of len(s).
func ColSums(s, x []float32) {
	if len(s) == 0 || len(x)%len(s) != 0 {
		panic("kernel: ColSums slices of mismatched lengths")
	}
	if len(x) == 0 {
		clear(s)
		return
	}
	colSums(s, x)
}

// GaussianLoss is the training loss of Gaussians given as rows of out (as
// GaussianSample reads them: len(hi) means, then as many raw
// log-variances, bounded as LogVarBound bounds them) against the targets
// y, rows of len(hi) values:
//
//	Σ_rows c·w_row Σ_d [(mean − y)²·exp(−lv) + lv],
//
// with w nil for unit weights. It sets dOut (out's shape) to the loss's
// gradient and adds the gradients with respect to hi and lo to dHi and dLo
// where they are not nil. In float32 but the sum (float64, row by row);
// c·w is rounded to float32.
func GaussianLoss(dOut, dHi, dLo, out, y, w, hi, lo []float32, c float64) float64 {
	checkRows("GaussianLoss", len(out)/2, len(y), len(dOut)/2, hi, lo)
	d := len(hi)
	if len(out)%2 != 0 || len(dOut) != len(out) || (w != nil && len(w) != len(y)/d) ||
		(dHi != nil && len(dHi) != d) || (dLo != nil && len(dLo) != d) {
		panic("kernel: GaussianLoss slices of mismatched lengths")
	}
	if len(y) == 0 {
		return 0
	}
	return gaussLoss(dOut, dHi, dLo, out, y, w, hi, lo, c)
}

// Normals fills dst with standard normal draws, the first len(dst) of the
// stream key: SplitMix64's outputs from state key, each turned into two
// draws by Box and Muller. A key's draws are the same on every call and
// every machine but for rounding (the C kernel's polynomials against
// libm's functions: float32 results differ in rare ties); draws beyond
// ±6.66 never occur (a probability of 3e-11). Filling in bulk is what
// makes it fast: vectorised in C, 16 draws to an AVX-512 pass.
func Normals(dst []float32, key uint64) {
	if len(dst) > 0 {
		normals(dst, key)
	}
}

// Standardize sets x[i] = (x[i] − mean[j])/std[j], j the column of x[i] in
// rows of len(mean) values: the same arithmetic as a scalar loop, in
// vector registers. len(x) is a multiple of len(mean); std has len(mean)
// values.
func Standardize(x, mean, std []float32) {
	d := len(mean)
	if d == 0 || len(std) != d || len(x)%d != 0 {
		panic("kernel: Standardize slices of mismatched lengths")
	}
	if len(x) > 0 {
		standardize(x, mean, std)
	}
}

func checkRows(name string, n, raw, eps int, hi, lo []float32) {
	d := len(hi)
	if d == 0 || len(lo) != d || raw != n || eps != n || n%d != 0 {
		panic("kernel: " + name + " slices of mismatched lengths")
	}
}

// Softplus sets dst[i] = log(1+exp(x[i])), accurate for inputs of any size.
func Softplus(dst, x []float32) {
	if len(x) < len(dst) {
		panic("kernel: Softplus slices too short")
	}
	if len(dst) > 0 {
		softplusVec(dst, x[:len(dst)])
	}
}
