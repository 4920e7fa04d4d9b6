package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func TestSgemmBackendsMatchFloat64(t *testing.T) {
	backends := map[string]gemmFunc{"selected(" + Backend + ")": Sgemm, "go": sgemmGo}
	type shape struct{ m, n, k int }
	// {32, 64, 32} and {40, 96, 33} go through oneDNN where the build has it
	// (sgemmWide), as the training pass's wide layers do.
	shapes := []shape{{1, 1, 1}, {1, 7, 1}, {5, 1, 3}, {1, 200, 6}, {37, 41, 43}, {64, 8, 200}, {32, 64, 32}, {40, 96, 33}, {257, 200, 200}, {3, 5, 0}}
	r := rand.New(rand.NewPCG(1, 2))
	for name, gemm := range backends {
		for _, s := range shapes {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}} {
						t.Run(fmt.Sprintf("%s/%dx%dx%d/tA=%v/tB=%v/a=%g/b=%g", name, s.m, s.n, s.k, ta, tb, ab[0], ab[1]), func(t *testing.T) {
							compareGemm(t, r, gemm, s.m, s.n, s.k, ta, tb, ab[0], ab[1])
						})
					}
				}
			}
		}
	}
}

func compareGemm(t *testing.T, r *rand.Rand, gemm gemmFunc, m, n, k int, ta, tb bool, alpha, beta float32) {
	// Strides larger than the rows exercise lda/ldb/ldc handling.
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+3, bc+1, n+2
	a := randSlice(r, max(ar*lda, 1))
	b := randSlice(r, max(br*ldb, 1))
	c := randSlice(r, m*ldc)
	if beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN()) // must not be read
		}
	}
	c0 := append([]float32(nil), c...)
	at := func(i, p int) float64 {
		if ta {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if tb {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < ldc; j++ {
			got := float64(c[i*ldc+j])
			if j >= n {
				if c[i*ldc+j] != c0[i*ldc+j] && !(math.IsNaN(got) && math.IsNaN(float64(c0[i*ldc+j]))) {
					t.Fatalf("wrote outside C at (%d,%d)", i, j)
				}
				continue
			}
			var want, scale float64
			for p := 0; p < k; p++ {
				want += at(i, p) * bt(p, j)
				scale += math.Abs(at(i, p) * bt(p, j))
			}
			want *= float64(alpha)
			scale *= math.Abs(float64(alpha))
			if beta != 0 {
				want += float64(beta) * float64(c0[i*ldc+j])
				scale += math.Abs(float64(beta) * float64(c0[i*ldc+j]))
			}
			if math.Abs(got-want) > 1e-5*scale+1e-6 || math.IsNaN(got) {
				t.Fatalf("C[%d,%d] = %g, want %g", i, j, got, want)
			}
		}
	}
}

func TestSgemmPanicsOnShortSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a too-short A")
		}
	}()
	Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
}

// testInputs spans the ranges the kernels must handle: tiny, moderate, the
// clamps of exp and beyond.
func testInputs() []float32 {
	xs := []float32{0, 1e-30, -1e-30, 1e-8, -1e-8, 1e-4, 0.2499, 0.25, 0.2501, -0.25, 87, -87, 88, -88, 89, -89, 100, -100, 1e6, -1e6}
	for x := -30.0; x <= 30; x += 0.0137 {
		xs = append(xs, float32(x))
	}
	return xs
}

type elemBackend struct {
	name     string
	exp      func(dst, x []float32)
	sigmoid  func(dst, x []float32)
	softplus func(dst, x []float32)
	biasAct  func(act Act, slope float32, z, h, bias []float32, rows, cols int)
	backward func(act Act, slope float32, dz, dh, z, h []float32)
}

func elemBackends() []elemBackend {
	return []elemBackend{
		{"selected", Exp, Sigmoid, Softplus, BiasAct, ActBackward},
		{"go", expGo, sigmoidGo, softplusGo, biasActGo, actBackwardGo},
	}
}

// close reports whether got is within rel·|want| + abs of want.
func close(got float32, want, rel, abs float64) bool {
	return math.Abs(float64(got)-want) <= rel*math.Abs(want)+abs
}

func TestElementwiseAgainstFloat64(t *testing.T) {
	xs := testInputs()
	dst := make([]float32, len(xs))
	for _, be := range elemBackends() {
		t.Run(be.name, func(t *testing.T) {
			be.exp(dst, xs)
			for i, x := range xs {
				want := math.Exp(math.Max(-87, math.Min(88, float64(x))))
				if !close(dst[i], want, 4e-7, 0) {
					t.Errorf("exp(%g) = %g, want %g", x, dst[i], want)
				}
			}
			be.sigmoid(dst, xs)
			for i, x := range xs {
				want := 1 / (1 + math.Exp(-float64(x)))
				if !close(dst[i], want, 5e-7, 1e-37) {
					t.Errorf("sigmoid(%g) = %g, want %g", x, dst[i], want)
				}
			}
			be.softplus(dst, xs)
			for i, x := range xs {
				want := math.Log1p(math.Exp(float64(x)))
				if x > 30 {
					want = float64(x)
				}
				// Absolute error 1e-37 covers results clamped at exp(−87).
				if !close(dst[i], want, 5e-7, 1e-37) {
					t.Errorf("softplus(%g) = %g, want %g", x, dst[i], want)
				}
			}
		})
	}
}

func refAct(act Act, slope float64, x float64) (y, dy float64) {
	switch act {
	case ReLU:
		if x > 0 {
			return x, 1
		}
		return 0, 0
	case LeakyReLU:
		if x > 0 {
			return x, 1
		}
		return slope * x, slope
	case Tanh:
		y = math.Tanh(x)
		return y, 1 - y*y
	case Swish:
		s := 1 / (1 + math.Exp(-x))
		return x * s, s + x*s*(1-s)
	}
	return x, 1
}

func TestActivationsAndDerivatives(t *testing.T) {
	acts := map[string]Act{"identity": Identity, "relu": ReLU, "leaky": LeakyReLU, "tanh": Tanh, "swish": Swish}
	xs := testInputs()
	cols := 3
	rows := (len(xs) + cols - 1) / cols
	n := rows * cols
	bias := []float32{0.5, -0.25, 0}
	for _, be := range elemBackends() {
		for name, act := range acts {
			t.Run(be.name+"/"+name, func(t *testing.T) {
				z := make([]float32, n)
				pre := make([]float32, n)
				for i := range z {
					z[i] = xs[i%len(xs)] - bias[i%cols]
				}
				h := make([]float32, n)
				be.biasAct(act, 0.01, z, h, bias, rows, cols)
				for i := range z {
					pre[i] = xs[i%len(xs)]
					if d := math.Abs(float64(z[i] - (pre[i] - bias[i%cols] + bias[i%cols]))); d != 0 {
						t.Fatalf("z[%d] = %g, want the biased input", i, z[i])
					}
				}
				dh := make([]float32, n)
				for i := range dh {
					dh[i] = float32(1 + i%5)
				}
				dz := make([]float32, n)
				be.backward(act, 0.01, dz, dh, z, h)
				for i := range z {
					y, dy := refAct(act, 0.01, float64(z[i]))
					if !close(h[i], y, 1e-6, 1e-7) {
						t.Errorf("act(%g) = %g, want %g", z[i], h[i], y)
					}
					if !close(dz[i], dy*float64(dh[i]), 2e-6, 2e-6) {
						t.Errorf("act'(%g)·%g = %g, want %g", z[i], dh[i], dz[i], dy*float64(dh[i]))
					}
				}
				// In place, as inference uses it.
				zz := append([]float32(nil), z...)
				for i := range zz {
					zz[i] -= bias[i%cols]
				}
				be.biasAct(act, 0.01, zz, zz, bias, rows, cols)
				for i := range zz {
					if zz[i] != h[i] {
						t.Fatalf("in-place result %g differs from %g at %d", zz[i], h[i], i)
					}
				}
			})
		}
	}
}

func TestNaNPropagates(t *testing.T) {
	nan := float32(math.NaN())
	x := []float32{nan, nan, nan, nan, nan, nan, nan, nan, nan}
	dst := make([]float32, len(x))
	for _, be := range elemBackends() {
		for name, f := range map[string]func(d, x []float32){"exp": be.exp, "sigmoid": be.sigmoid, "softplus": be.softplus} {
			f(dst, x)
			for _, v := range dst {
				if v == v {
					t.Errorf("%s/%s(NaN) = %g, want NaN", be.name, name, v)
				}
			}
		}
		for _, act := range []Act{Identity, ReLU, LeakyReLU, Tanh, Swish} {
			z := append([]float32(nil), x...)
			be.biasAct(act, 0.01, z, dst, make([]float32, 3), 3, 3)
			for _, v := range dst {
				if v == v {
					t.Errorf("%s: activation %d of NaN = %g, want NaN", be.name, act, v)
				}
			}
		}
	}
}

func TestBackendsAgree(t *testing.T) {
	// The C kernels compute the Go formulas; only contraction into FMA may
	// differ, by an ulp or two.
	xs := testInputs()
	a, b := make([]float32, len(xs)), make([]float32, len(xs))
	pairs := []struct {
		name string
		f, g func(d, x []float32)
	}{{"exp", Exp, expGo}, {"sigmoid", Sigmoid, sigmoidGo}, {"softplus", Softplus, softplusGo}}
	for _, p := range pairs {
		p.f(a, xs)
		p.g(b, xs)
		for i := range a {
			if !close(a[i], float64(b[i]), 3e-7, 1e-38) {
				t.Errorf("%s(%g): %s %g, go %g", p.name, xs[i], Backend, a[i], b[i])
			}
		}
	}
}

func BenchmarkElementwise(b *testing.B) {
	const n = 200 * 256
	x := make([]float32, n)
	h := make([]float32, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	bias := make([]float32, 200)
	for _, be := range elemBackends() {
		for name, act := range map[string]Act{"swish": Swish, "tanh": Tanh} {
			b.Run(be.name+"/"+name, func(b *testing.B) {
				z := append([]float32(nil), x...)
				for b.Loop() {
					be.biasAct(act, 0, z, h, bias, n/200, 200)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
			})
		}
		b.Run(be.name+"/exp", func(b *testing.B) {
			for b.Loop() {
				be.exp(h, x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
		})
	}
}

// adamInputs is n random parameters, gradients and first moments, and
// second moments (squares, so non-negative) for Adam's tests.
func adamInputs(r *rand.Rand, n int) (p, g, m, v []float32) {
	p, g, m, v = randSlice(r, n), randSlice(r, n), randSlice(r, n), randSlice(r, n)
	for i := range v {
		v[i] *= v[i]
	}
	return p, g, m, v
}

func TestAdamUpdateAndDecayBackendsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n = 1000
	p0, g, m0, v0 := adamInputs(r, n)
	run := func(f func(p, g, m, v []float32, b1, b2, lr, rbc2, eps float32)) (p, m, v []float32) {
		p, m, v = append([]float32(nil), p0...), append([]float32(nil), m0...), append([]float32(nil), v0...)
		f(p, g, m, v, 0.9, 0.999, 0.01, 1.5, 1e-8)
		return
	}
	pa, ma, va := run(AdamUpdate)
	pb, mb, vb := run(adamUpdateGo)
	for i := 0; i < n; i++ {
		// Reference in float64, from the float32 coefficients the kernels
		// see (1 − float32(0.999) differs from 0.001 by 1.3e-5 relative).
		b1, b2 := float64(float32(0.9)), float64(float32(0.999))
		mm := b1*float64(m0[i]) + (1-b1)*float64(g[i])
		vv := b2*float64(v0[i]) + (1-b2)*float64(g[i])*float64(g[i])
		want := float64(p0[i]) - 0.01*mm/(math.Sqrt(vv)*1.5+1e-8)
		for _, got := range [][3]float32{{pa[i], ma[i], va[i]}, {pb[i], mb[i], vb[i]}} {
			if !close(got[0], want, 1e-6, 1e-6) || !close(got[1], mm, 1e-6, 1e-7) || !close(got[2], vv, 1e-6, 1e-7) {
				t.Fatalf("element %d: got p,m,v %v, want %g %g %g", i, got, want, mm, vv)
			}
		}
	}
	w, g0 := randSlice(r, 3001), randSlice(r, 3001)
	ga, gb := append([]float32(nil), g0...), append([]float32(nil), g0...)
	Decay(ga, w, 0.3)
	decayGo(gb, w, 0.3)
	for i, x := range w {
		// g + λ·w rounded once (fused) or twice: within an ulp of the
		// larger term either way.
		want := float64(g0[i]) + float64(float32(0.3))*float64(x)
		tol := 2 * math.Max(math.Abs(float64(g0[i])), math.Abs(0.3*float64(x))) / (1 << 23)
		if math.Abs(float64(ga[i])-want) > tol || math.Abs(float64(gb[i])-want) > tol {
			t.Fatalf("decay gradient %d: %g (%s) and %g (go), want %g", i, ga[i], Backend, gb[i], want)
		}
	}
}

// BenchmarkPeak measures the machine's fp32 FMA peak per core (and bf16
// where the CPU has AVX512_BF16), the floor of the speed targets.
func BenchmarkPeak(b *testing.B) {
	for b.Loop() {
		p := measurePeak(2)
		if !p.Supported {
			b.Skip("no peak loop for this CPU in this build")
		}
		b.ReportMetric(p.FP32, "fp32-GFLOP/s/core")
		b.ReportMetric(p.FP32Cores, "fp32-GFLOP/s/2cores")
		b.ReportMetric(p.BF16, "bf16-GFLOP/s/core")
	}
}

// TestSincos checks Sincos against math.Sincos rounded to float32, within
// one float32 ulp (the results are equal but for ties), over angles a
// planner meets, multiples of π/2 (where the reduction must be exact),
// angles past 2^19 (libm's pass), ±Inf and NaN.
func TestSincos(t *testing.T) {
	xs := append(testInputs(), 1e-40, 0x1p19, -0x1p19, 0x1p19-0.5, 3e8, -1e30, math.MaxFloat32)
	for k := -40; k <= 40; k++ {
		v := float32(float64(k) * math.Pi / 2)
		xs = append(xs, v, math.Nextafter32(v, 1e9), math.Nextafter32(v, -1e9))
	}
	for x := -3000.0; x <= 3000; x += 0.731 {
		xs = append(xs, float32(x))
	}
	// The float32 inputs below 2^19 closest to a multiple of π/2 (the
	// closest, 252.89821, is 4.2e-9 from 161·π/2): there the reduction
	// must carry π/2 to more than double's digits.
	type near struct {
		x float32
		d float64
	}
	var worst [4]near
	for i := range worst {
		worst[i].d = 1
	}
	for k := 1.0; k < 0x1p19/(math.Pi/2); k++ {
		v := float32(k * math.Pi / 2)
		d := math.Abs(float64(v) - k*math.Pi/2)
		for i := range worst {
			if d < worst[i].d {
				copy(worst[i+1:], worst[i:])
				worst[i] = near{v, d}
				break
			}
		}
	}
	for _, w := range worst {
		xs = append(xs, w.x, -w.x)
	}
	special := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	xs = append(xs, special...)
	s, c := make([]float32, len(xs)), make([]float32, len(xs))
	ulp := func(got float32, want float64) bool {
		w := float32(want)
		return got == w || got == math.Nextafter32(w, 2) || got == math.Nextafter32(w, -2) || (got != got && w != w)
	}
	for _, be := range []struct {
		name string
		f    func(s, c, x []float32)
	}{{"selected", Sincos}, {"go", sincosGo}} {
		// Odd offsets and lengths reach the vector loops' tails.
		for _, off := range []int{0, 3} {
			clear(s)
			clear(c)
			be.f(s[off:], c[off:], xs[off:])
			for i := off; i < len(xs); i++ {
				ws, wc := math.Sincos(float64(xs[i]))
				if !ulp(s[i], ws) || !ulp(c[i], wc) {
					t.Errorf("%s: sincos(%g) = %g, %g, want %g, %g", be.name, xs[i], s[i], c[i], float32(ws), float32(wc))
				}
			}
		}
	}
}

// TestNormals checks the stream (SplitMix64's outputs), the draws against
// the math package's functions of the same bits in float64 (rounded to
// nearest but for ties), odd lengths (a pair's first draw), and the
// draws' distribution: moments,
// the Kolmogorov–Smirnov distance to the normal CDF, and correlations
// within a stream and between neighbouring keys.
func TestNormals(t *testing.T) {
	// The first output of SplitMix64 seeded with 0, as its authors' code
	// gives it.
	if got := mix64(0x9e3779b97f4a7c15); got != 0xe220a8397b1dcdaf {
		t.Fatalf("mix64: %#x", got)
	}
	// Half a float32 ulp of want, and the C kernel's error (below 2e-12
	// relative: its polynomials' truncation).
	rounded := func(got float32, want float64) bool {
		a := float32(math.Abs(want))
		ulp := min(math.Nextafter32(a, 10)-a, a-math.Nextafter32(a, -10))
		return math.Abs(float64(got)-want) <= 0.5*float64(ulp)+1e-11*math.Abs(want)
	}
	for _, key := range []uint64{0, 1, 0xdeadbeef, math.MaxUint64} {
		for _, n := range []int{1, 2, 3, 17, 64, 100001} {
			got := make([]float32, n)
			Normals(got, key)
			for i := range got {
				c, s := normalPair(key, i/2)
				if want := []float64{c, s}[i%2]; !rounded(got[i], want) {
					t.Fatalf("key %d, n %d: draw %d is %g, want %g", key, n, i, got[i], want)
				}
			}
			// A shorter fill is the longer one's beginning.
			long := make([]float32, n+5)
			Normals(long, key)
			for i := range got {
				if long[i] != got[i] {
					t.Fatalf("key %d: draw %d of %d is %g, of %d %g", key, i, n, got[i], n+5, long[i])
				}
			}
		}
	}
	const n = 1 << 20
	x, y := make([]float32, n), make([]float32, n)
	Normals(x, 1)
	Normals(y, 2)
	var m1, m2, m4, lag1, lag2, cross float64
	for i, v := range x {
		a := float64(v)
		if math.Abs(a) > 6.67 {
			t.Fatalf("draw %d is %g", i, a)
		}
		m1 += a
		m2 += a * a
		m4 += a * a * a * a
		cross += a * float64(y[i])
		if i+2 < n {
			lag1 += a * float64(x[i+1])
			lag2 += a * float64(x[i+2])
		}
	}
	se := 1 / math.Sqrt(n)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64 // five standard errors
	}{
		{"mean", m1 / n, 0, 5 * se},
		{"variance", m2 / n, 1, 5 * math.Sqrt(2) * se},
		{"fourth moment", m4 / n, 3, 5 * math.Sqrt(96) * se},
		{"correlation of a pair's draws", lag1 / n, 0, 5 * se},
		{"correlation of neighbouring pairs", lag2 / n, 0, 5 * se},
		{"correlation of keys 1 and 2", cross / n, 0, 5 * se},
	} {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s %g, want %g ± %g", c.name, c.got, c.want, c.tol)
		}
	}
	slices.Sort(x)
	var ks float64
	for i, v := range x {
		f := 0.5 * math.Erfc(-float64(v)/math.Sqrt2)
		ks = max(ks, math.Abs(f-float64(i)/n), math.Abs(f-float64(i+1)/n))
	}
	// The distance's 0.1% critical value is 1.95/√n.
	if ks > 1.95*se {
		t.Errorf("Kolmogorov–Smirnov distance %g, want below %g", ks, 1.95*se)
	}
}

// TestStandardize: the same values as the scalar formula, bit for bit,
// for rows narrower than a block (several to a block, a partial last one)
// and wider, with NaN passing through.
func TestStandardize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ d, rows int }{{1, 1}, {3, 100}, {6, 43}, {24, 77}, {300, 3}} {
		mean, std := randSlice(r, c.d), randSlice(r, c.d)
		for j := range std {
			std[j] = 0.1 + std[j]*std[j]
		}
		x := randSlice(r, c.rows*c.d)
		x[len(x)/2] = float32(math.NaN())
		for _, f := range []struct {
			name string
			f    func(x, mean, std []float32)
		}{{"selected", Standardize}, {"go", standardizeGo}} {
			// Sentinels past the end must stay.
			buf := append(slices.Clone(x), make([]float32, 300)...)
			got := buf[:len(x)]
			f.f(got, mean, std)
			if i := slices.IndexFunc(buf[len(x):], func(v float32) bool { return v != 0 }); i >= 0 {
				t.Fatalf("%s, rows of %d: wrote %d past the end", f.name, c.d, i)
			}
			for i, v := range x {
				want := (v - mean[i%c.d]) / std[i%c.d]
				if got[i] != want && !(want != want && got[i] != got[i]) {
					t.Fatalf("%s, rows of %d: value %d is %g, want %g", f.name, c.d, i, got[i], want)
				}
			}
		}
	}
}

func BenchmarkNormals(b *testing.B) {
	dst := make([]float32, 4096)
	b.SetBytes(int64(4 * len(dst)))
	for i := 0; b.Loop(); i++ {
		Normals(dst, uint64(i))
	}
}

// TestGaussianSample checks the log-variance bounds, alone and fused with
// the sample, against the formula in float64: rows of 3 (many rows to a block, a
// partial last block) and of 300 (wider than a block), raw log-variances
// beyond both bounds, and NaN.
func TestGaussianSample(t *testing.T) {
	for _, d := range []int{3, 18, 300} {
		rows := 700 / d * 2
		n := rows * d
		hi, lo := make([]float32, d), make([]float32, d)
		for j := range d {
			hi[j], lo[j] = 0.5-0.1*float32(j%5), -10+float32(j%7)
		}
		// eps goes on past n with ones, so that a write past the end would
		// change the sentinels below.
		raw, eps, mean := make([]float32, n), make([]float32, n+300)[:n], make([]float32, n)
		for i := n; i < cap(eps); i++ {
			eps[:cap(eps)][i] = 1
		}
		r := rand.New(rand.NewPCG(uint64(d), 1))
		for i := range raw {
			raw[i] = float32(r.Float64()*40 - 25)
			eps[i] = float32(r.NormFloat64())
			mean[i] = float32(r.NormFloat64())
		}
		raw[n/2] = float32(math.NaN())
		// The bounds alone, in place.
		for _, be := range []struct {
			name string
			f    func(lv, raw, hi, lo []float32)
		}{{"selected", LogVarBound}, {"go", logVarBoundGo}} {
			lv := append([]float32(nil), raw...)
			be.f(lv, lv, hi, lo)
			for i, x := range raw {
				h, l := float64(hi[i%d]), float64(lo[i%d])
				want := h - math.Log1p(math.Exp(h-float64(x)))
				want = l + math.Log1p(math.Exp(want-l))
				if i == n/2 {
					want = math.NaN()
				}
				if !close(lv[i], want, 1e-6, 1e-6) && !(lv[i] != lv[i] && want != want) {
					t.Fatalf("%s, d=%d: bound of %g in [%g, %g] = %g, want %g", be.name, d, x, lo[i%d], hi[i%d], lv[i], want)
				}
			}
		}
		// The network's output rows: d means, then d raw log-variances.
		out := make([]float32, 2*n)
		for i := range mean {
			r, j := i/d, i%d
			out[2*r*d+j], out[2*r*d+d+j] = mean[i], raw[i]
		}
		for _, be := range []struct {
			name string
			f    func(sample, out, hi, lo, eps []float32)
		}{{"selected", GaussianSample}, {"go", gaussSampleGo}} {
			// Sentinels past the end catch writes beyond the last row.
			buf := make([]float32, n+300)
			for i := n; i < len(buf); i++ {
				buf[i] = 7
			}
			got := buf[:n]
			be.f(got, out, hi, lo, eps)
			for i := n; i < len(buf); i++ {
				if buf[i] != 7 {
					t.Fatalf("%s, d=%d: wrote past the end, at %d", be.name, d, i)
				}
			}
			for i := range got {
				j := i % d
				h, l, x := float64(hi[j]), float64(lo[j]), float64(raw[i])
				lv := h - math.Log1p(math.Exp(h-x))
				lv = l + math.Log1p(math.Exp(lv-l))
				term := math.Exp(lv/2) * float64(eps[i])
				if i == n/2 {
					if got[i] == got[i] {
						t.Errorf("%s: NaN log-variance gave %g", be.name, got[i])
					}
					continue
				}
				if d := float64(got[i]-mean[i]) - term; math.Abs(d) > 3e-6*math.Abs(term)+2e-7*(1+math.Abs(float64(mean[i]))) {
					t.Fatalf("%s, d=%d: value %d (raw %g, bounds %g, %g): added %g, want %g", be.name, len(hi), i, raw[i], hi[j], lo[j], got[i]-mean[i], term)
				}
			}
		}
	}
}

// TestGaussianLoss checks both backends' loss and gradients against the
// formulas in float64, with and without weights and bound gradients, for
// rows narrower and wider than a block.
func TestGaussianLoss(t *testing.T) {
	for _, d := range []int{3, 18, 300} {
		for _, weighted := range []bool{false, true} {
			rows := 1100/d + 3
			n := rows * d
			r := rand.New(rand.NewPCG(uint64(d), 2))
			hi, lo := make([]float32, d), make([]float32, d)
			for j := range d {
				hi[j], lo[j] = 0.5-0.1*float32(j%5), -3+0.3*float32(j%7)
			}
			out, y := make([]float32, 2*n), make([]float32, n)
			for i := range out {
				out[i] = float32(r.Float64()*8 - 4)
			}
			for i := range y {
				y[i] = float32(r.NormFloat64())
			}
			var w []float32
			if weighted {
				w = make([]float32, rows)
				for i := range w {
					w[i] = float32(r.Float64() * 2)
				}
			}
			const c = 1.0 / 37
			// The reference, in float64.
			wantOut, wantHi, wantLo := make([]float64, 2*n), make([]float64, d), make([]float64, d)
			var wantLoss float64
			sp := func(x float64) (float64, float64) { return math.Log1p(math.Exp(x)), 1 / (1 + math.Exp(-x)) }
			for row := 0; row < rows; row++ {
				wr := c
				if w != nil {
					wr *= float64(w[row])
				}
				for j := range d {
					h, l := float64(hi[j]), float64(lo[j])
					sp1, s1 := sp(h - float64(out[2*row*d+d+j]))
					sp2, s2 := sp(h - sp1 - l)
					lv := l + sp2
					e := float64(out[2*row*d+j]) - float64(y[row*d+j])
					iv := math.Exp(-lv)
					wantLoss += wr * (e*e*iv + lv)
					wantOut[2*row*d+j] = wr * 2 * e * iv
					dlv := wr * (1 - e*e*iv)
					wantOut[2*row*d+d+j] = dlv * s2 * s1
					wantHi[j] += dlv * s2 * (1 - s1)
					wantLo[j] += dlv * (1 - s2)
				}
			}
			for _, be := range []struct {
				name string
				f    func(dOut, dHi, dLo, out, y, w, hi, lo []float32, c float64) float64
			}{{"selected", GaussianLoss}, {"go", gaussLossGo}} {
				for _, bounds := range []bool{false, true} {
					dOut := make([]float32, 2*n)
					var dHi, dLo []float32
					if bounds {
						// Added to, not set.
						dHi, dLo = make([]float32, d), make([]float32, d)
						for j := range d {
							dHi[j], dLo[j] = 1, -1
						}
					}
					loss := be.f(dOut, dHi, dLo, out, y, w, hi, lo, c)
					name := fmt.Sprintf("%s, d=%d, weighted=%v, bounds=%v", be.name, d, weighted, bounds)
					if math.Abs(loss-wantLoss) > 1e-5*math.Abs(wantLoss)+1e-6 {
						t.Fatalf("%s: loss %g, want %g", name, loss, wantLoss)
					}
					for i, g := range dOut {
						if !close(g, wantOut[i], 1e-5, 1e-8) {
							t.Fatalf("%s: gradient %d = %g, want %g", name, i, g, wantOut[i])
						}
					}
					if bounds {
						for j := range d {
							// Sums of rows' float32 terms.
							if !close(dHi[j], wantHi[j]+1, 1e-4, 1e-6) || !close(dLo[j], wantLo[j]-1, 1e-4, 1e-6) {
								t.Fatalf("%s: bound gradients %d = %g, %g, want %g, %g", name, j, dHi[j], dLo[j], wantHi[j]+1, wantLo[j]-1)
							}
						}
					}
				}
			}
		}
	}
}

// TestColSums checks both backends against the scalar loop bit for bit:
// each column summed row by row.
func TestColSums(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, cols := range []int{1, 7, 36, 200} {
		for _, rows := range []int{0, 1, 32, 33} {
			x := make([]float32, rows*cols)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Exp(r.NormFloat64()*3))
			}
			want := make([]float32, cols)
			for row := 0; row < rows; row++ {
				for j := range cols {
					want[j] += x[row*cols+j]
				}
			}
			for _, be := range []struct {
				name string
				f    func(s, x []float32)
			}{{"selected", ColSums}, {"go", colSumsGo}} {
				s := make([]float32, cols)
				for j := range s {
					s[j] = 99 // set, not added to
				}
				be.f(s, x)
				for j := range s {
					if math.Float32bits(s[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%s, %d × %d: column %d sums to %g, want %g", be.name, rows, cols, j, s[j], want[j])
					}
				}
			}
		}
	}
}

// TestAdamDecayIsDecayThenAdam checks that the fused pass gives, on each
// backend, the bits of Decay followed by AdamUpdate, and leaves the
// gradient alone.
func TestAdamDecayIsDecayThenAdam(t *testing.T) {
	const n = 2001
	p0, g0, m0, v0 := adamInputs(rand.New(rand.NewPCG(9, 10)), n)
	cp := func(s []float32) []float32 { return append([]float32(nil), s...) }
	for _, be := range []struct {
		name   string
		fused  func(p, g, m, v []float32, lambda, b1, b2, lr, rbc2, eps float32)
		decay  func(g, w []float32, lambda float32)
		update func(p, g, m, v []float32, b1, b2, lr, rbc2, eps float32)
	}{{"selected", AdamDecay, Decay, AdamUpdate}, {"go", adamDecayGo, decayGo, adamUpdateGo}} {
		pa, ga, ma, va := cp(p0), cp(g0), cp(m0), cp(v0)
		be.fused(pa, ga, ma, va, 0.05, 0.9, 0.999, 0.01, 1.5, 1e-8)
		pb, gb, mb, vb := cp(p0), cp(g0), cp(m0), cp(v0)
		be.decay(gb, pb, 0.05)
		be.update(pb, gb, mb, vb, 0.9, 0.999, 0.01, 1.5, 1e-8)
		for i := range n {
			if math.Float32bits(pa[i]) != math.Float32bits(pb[i]) || math.Float32bits(ma[i]) != math.Float32bits(mb[i]) ||
				math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				t.Fatalf("%s, element %d: fused p,m,v %g %g %g, in two passes %g %g %g", be.name, i, pa[i], ma[i], va[i], pb[i], mb[i], vb[i])
			}
			if ga[i] != g0[i] {
				t.Fatalf("%s: the fused pass changed gradient %d", be.name, i)
			}
		}
	}
}
