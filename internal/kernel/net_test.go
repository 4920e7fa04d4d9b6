package kernel

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refNet is the float64 forward pass of an ensemble MLP; with bf16 it
// rounds what the bf16 path rounds — inputs, weights and the hidden
// activations passed between layers — and nothing else. It is the
// portable reference of the bf16 arithmetic, checked on any machine.
func refNet(widths []int, member int, act Act, W, B [][]float32, x []float32, rows int, bf16 bool) []float64 {
	const slope = 0.01 // LeakyReLU's, as the tests make their nets
	round := func(v float32) float64 {
		if bf16 {
			return float64(BF16(v))
		}
		return float64(v)
	}
	L := len(widths) - 1
	in := make([]float64, rows*widths[0])
	for i := range in {
		in[i] = round(x[i])
	}
	for l := 0; l < L; l++ {
		K, N := widths[l], widths[l+1]
		w := W[l][member*K*N : (member+1)*K*N]
		b := B[l][member*N : (member+1)*N]
		out := make([]float64, rows*N)
		for r := 0; r < rows; r++ {
			for j := 0; j < N; j++ {
				s := float64(b[j])
				for k := 0; k < K; k++ {
					s += in[r*K+k] * round(w[k*N+j])
				}
				if l < L-1 {
					switch act {
					case Swish:
						s = s / (1 + math.Exp(-s))
					case Tanh:
						s = math.Tanh(s)
					case ReLU:
						s = math.Max(s, 0)
					case LeakyReLU:
						if s < 0 {
							s *= slope
						}
					}
					s = round(float32(s))
				}
				out[r*N+j] = s
			}
		}
		in = out
	}
	return in
}

func randomNet(widths []int, members int, seed uint64) (W, B [][]float32) {
	r := rand.New(rand.NewPCG(seed, 7))
	for l := 0; l+1 < len(widths); l++ {
		K, N := widths[l], widths[l+1]
		w := make([]float32, members*K*N)
		b := make([]float32, members*N)
		for i := range w {
			w[i] = float32(r.NormFloat64() / math.Sqrt(float64(K)))
		}
		for i := range b {
			b[i] = float32(0.1 * r.NormFloat64())
		}
		W, B = append(W, w), append(B, b)
	}
	return W, B
}

// relErr is the largest error of got against want, relative to want's
// root mean square.
func relErr(got []float32, want []float64) float64 {
	var ss, worst float64
	for i := range want {
		ss += want[i] * want[i]
		worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
	}
	return worst / math.Sqrt(ss/float64(len(want)))
}

// rmsErr is the root-mean-square error of got against want, relative to
// want's root mean square.
func rmsErr(got []float32, want []float64) float64 {
	var ss, se float64
	for i := range want {
		ss += want[i] * want[i]
		d := float64(got[i]) - want[i]
		se += d * d
	}
	return math.Sqrt(se / ss)
}

// TestBF16Rounding: round to nearest, ties to even, on the bit patterns.
func TestBF16Rounding(t *testing.T) {
	for _, c := range []struct{ in, want uint32 }{
		{0x3f800000, 0x3f800000}, // 1
		{0x3f808000, 0x3f800000}, // a tie: to the even 1
		{0x3f818000, 0x3f820000}, // a tie: to the even 1 + 2^-6
		{0x3f808001, 0x3f810000}, // above the tie
		{0x3f807fff, 0x3f800000}, // below it
		{0x7f7fffff, 0x7f800000}, // the largest float rounds to +Inf
		{0xbf808001, 0xbf810000}, // negative
	} {
		if got := math.Float32bits(BF16(math.Float32frombits(c.in))); got != c.want {
			t.Errorf("BF16(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
	if v := BF16(float32(math.NaN())); !math.IsNaN(float64(v)) {
		t.Errorf("BF16(NaN) = %v", v)
	}
}

// TestBF16ReferenceAgainstFloat64: the bf16 arithmetic (the portable
// reference) stays within 2% RMS of the float64 pass, and within 10% of
// the outputs' RMS at its worst, for a 3-hidden-layer swish net of PETS's
// shape (measured: about 1% and 5%); and it does round (it is not the
// float64 pass).
func TestBF16ReferenceAgainstFloat64(t *testing.T) {
	widths := []int{6, 200, 200, 200, 8}
	W, B := randomNet(widths, 1, 3)
	r := rand.New(rand.NewPCG(4, 4))
	const rows = 64
	x := make([]float32, rows*6)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	exact := refNet(widths, 0, Swish, W, B, x, rows, false)
	bf := refNet(widths, 0, Swish, W, B, x, rows, true)
	got := make([]float32, len(bf))
	for i, v := range bf {
		got[i] = float32(v)
	}
	e, rms := relErr(got, exact), rmsErr(got, exact)
	t.Logf("bf16 reference against float64: RMS error %.4f, largest %.4f of the outputs' RMS", rms, e)
	if rms > 0.02 || e > 0.1 || rms < 1e-4 {
		t.Fatalf("bf16 reference error: RMS %.5f (want in [1e-4, 0.02]), largest %.5f (want ≤ 0.1)", rms, e)
	}
}

// TestNetAgainstReference: the packed net computes, member by member and
// for row counts below, at and above the usual block, what the float64
// reference computes: within 1e-5 of the outputs' RMS in fp32 (on our
// AVX-512 kernel and on oneDNN's), and — where the CPU has AVX512_BF16 —
// within 2% RMS of the float64 pass and 1% of the bf16 reference (it
// rounds where the reference rounds; the sums' order may flip a rounding)
// in bf16. The widths are no multiples of the kernel's tiles.
func TestNetAgainstReference(t *testing.T) {
	if !NetAvailable {
		t.Skip("built without oneDNN")
	}
	t.Logf("nets run on %s and %s", NetKernel(false), NetKernel(true))
	defer func() { ownKernel = 2 }()
	widths := []int{6, 48, 43, 8}
	const members = 3
	W, B := randomNet(widths, members, 5)
	r := rand.New(rand.NewPCG(6, 6))
	for _, c := range []struct {
		bf16 bool
		own  int
	}{{false, 2}, {false, 1}, {false, 0}, {true, 2}, {true, 0}} {
		bf16 := c.bf16
		ownKernel = c.own
		if bf16 && !HasBF16() {
			t.Log("no AVX512_BF16: the bf16 path is checked through its reference only")
			continue
		}
		for _, act := range []Act{Swish, Tanh, ReLU, LeakyReLU, Identity} {
			n, err := NewNet(widths, members, act, 0.01, bf16, W, B, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, rows := range []int{1, 7, 17, 32, 512, 700} {
				x := make([]float32, rows*6)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				dst := make([]float32, rows*8)
				for e := 0; e < members; e++ {
					if err := n.Forward(e%2, e, x, rows, dst); err != nil {
						t.Fatal(err)
					}
					exact := refNet(widths, e, act, W, B, x, rows, false)
					if bf16 {
						ref := refNet(widths, e, act, W, B, x, rows, true)
						if e1, e2 := rmsErr(dst, exact), relErr(dst, ref); e1 > 0.02 || e2 > 0.01 {
							t.Fatalf("bf16 (%s) act %d rows %d member %d: RMS error %.5f of float64, largest %.5f of the bf16 reference", NetKernel(true), act, rows, e, e1, e2)
						}
					} else if e1 := relErr(dst, exact); e1 > 1e-5 {
						t.Fatalf("fp32 (%s) act %d rows %d member %d: error %.2g", NetKernel(false), act, rows, e, e1)
					}
				}
			}
			n.Close()
		}
	}
	if _, err := NewNet(widths, members, Swish, 0, false, W[:1], B, 1); err == nil {
		t.Fatal("a net with too few layers was made")
	}
}

// TestNetActivationsAtExtremes: a net whose output is its one hidden
// unit's activation gives the activation's value, to 1e-6 of its size
// (plus 1e-30: swish's e^−x saturates below −87), from −1000 to 1000 —
// where e^±x over- or underflows, and near 0, where tanh computed as
// (1 − e)/(1 + e) was 3e-6 off — and NaN gives NaN, on every kernel (with
// oneDNN's relu too, which makes NaN 0).
func TestNetActivationsAtExtremes(t *testing.T) {
	if !NetAvailable {
		t.Skip("built without oneDNN")
	}
	defer func() { ownKernel = 2 }()
	xs := []float32{-1000, -200, -104, -90, -88, -40, -1, -0.3, -1e-3, -1e-6, 0, 1e-6, 1e-3, 0.3, 1, 40, 88, 90, 104, 200, 1000, float32(math.NaN())}
	W := [][]float32{{1}, {1}}
	B := [][]float32{{0}, {0}}
	for _, own := range []int{2, 1, 0} {
		ownKernel = own
		for _, act := range []Act{Swish, Tanh, ReLU, LeakyReLU} {
			n, err := NewNet([]int{1, 1, 1}, 1, act, 0.01, false, W, B, 1)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, len(xs))
			if err := n.Forward(0, 0, xs, len(xs), dst); err != nil {
				t.Fatal(err)
			}
			n.Close()
			for i, x := range xs {
				if x != x {
					if dst[i] == dst[i] {
						t.Errorf("%s, act %d: f(NaN) = %g", NetKernel(false), act, dst[i])
					}
					continue
				}
				want := refNet([]int{1, 1, 1}, 0, act, W, B, []float32{x}, 1, false)[0]
				if got := float64(dst[i]); math.IsNaN(got) || math.Abs(got-want) > 1e-6*math.Abs(want)+1e-30 {
					t.Errorf("%s, act %d: f(%g) = %g, want %g", NetKernel(false), act, x, got, want)
				}
			}
		}
	}
}

// TestNetIsDeterministic: the same blocks through ForwardBlocks give the
// same bits every time, on one thread or two and in chunks of any size (a
// oneDNN primitive run by two threads at once once shared a scratchpad and
// did not).
func TestNetIsDeterministic(t *testing.T) {
	if !NetAvailable {
		t.Skip("built without oneDNN")
	}
	widths := []int{6, 64, 64, 8}
	const members, rows, blocks = 4, 700, 8
	W, B := randomNet(widths, members, 9)
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, blocks*rows*6)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	ms := []int{0, 1, 2, 3, 3, 2, 1, 0}
	defer func() { ownKernel = 2 }()
	seen := map[string]bool{}
	for _, c := range []struct {
		own  int
		bf16 bool
	}{{2, false}, {1, false}, {0, false}, {2, true}, {0, true}} {
		ownKernel = c.own
		name := NetKernel(c.bf16)
		if c.bf16 && !HasBF16() || seen[name] {
			continue // a kernel this CPU falls back from
		}
		seen[name] = true
		// Three workers, called with 1, 2 and 3 threads in turn: helpers
		// sit some calls out and must still wake for the next.
		n, err := NewNet(widths, members, Swish, 0, c.bf16, W, B, 3)
		if err != nil {
			t.Fatal(err)
		}
		var first []float32
		for rep := 0; rep < 9; rep++ {
			dst := make([]float32, blocks*rows*8)
			// In chunks of any size: the planner picks them by the rows
			// and workers of a call.
			chunk := []int{128, 32, 700, 96, 512, 1}[rep%6]
			if err := n.ForwardBlocks(1+rep%3, x, rows, ms, blocks, chunk, dst); err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = dst
				continue
			}
			for i := range dst {
				if math.Float32bits(dst[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%s repetition %d (%d threads, chunks of %d rows): output %d is %v, first %v", name, rep, 1+rep%3, chunk, i, dst[i], first[i])
				}
			}
		}
		// Rows split into pieces of other sizes (some 30 of them), from
		// other offsets, by worker 2 alone: the same results.
		dst := make([]float32, blocks*rows*8)
		for b, mb := range ms {
			for lo := 0; lo < rows; {
				hi := min(rows, lo+1+(lo*13+b*37+5)%300)
				r0 := b*rows + lo
				if err := n.Forward(2, mb, x[r0*6:], hi-lo, dst[r0*8:]); err != nil {
					t.Fatal(err)
				}
				lo = hi
			}
		}
		for i := range dst {
			if math.Float32bits(dst[i]) != math.Float32bits(first[i]) {
				t.Fatalf("%s: output %d in pieces is %v, in blocks %v", name, i, dst[i], first[i])
			}
		}
		n.Close()
	}
}

// BenchmarkNet is the planning model's call on each kernel this machine
// runs: 5 members × 2000 rows through 6 → 200 → 200 → 200 → 8, swish, on
// one thread. oneDNN's ISA can be capped for comparison with the AVX2
// kernel: DNNL_MAX_CPU_ISA=AVX2.
func BenchmarkNet(b *testing.B) {
	if !NetAvailable {
		b.Skip("built without oneDNN")
	}
	defer func() { ownKernel = 2 }()
	widths := []int{6, 200, 200, 200, 8}
	const members, rows = 5, 2000
	W, B := randomNet(widths, members, 11)
	r := rand.New(rand.NewPCG(12, 12))
	x := make([]float32, members*rows*6)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dst := make([]float32, members*rows*8)
	flops := 0.0
	for l := 0; l+1 < len(widths); l++ {
		flops += 2 * float64(widths[l]*widths[l+1]*members*rows)
	}
	for _, bf16 := range []bool{false, true} {
		for _, own := range []int{2, 1, 0} {
			ownKernel = own
			if bf16 && (!HasBF16() || own == 1) {
				continue
			}
			name := NetKernel(bf16)
			b.Run(strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(name), func(b *testing.B) {
				n, err := NewNet(widths, members, Swish, 0, bf16, W, B, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer n.Close()
				for b.Loop() {
					if err := n.ForwardBlocks(1, x, rows, nil, members, 512, dst); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
