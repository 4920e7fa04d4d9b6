package nn

import (
	"fmt"
	"testing"

	"github.com/mismatch-rl/mismatch/rng"
)

// flops counts 2 per multiply-add of the matrix products of rows rows per
// member through cfg (element-wise work is not counted).
func flops(cfg Config, rows int) float64 {
	w := cfg.widths()
	var macs int
	for i := 0; i+1 < len(w); i++ {
		macs += w[i] * w[i+1]
	}
	return 2 * float64(macs) * float64(rows*cfg.Members)
}

// BenchmarkForward is one PETS cartpole planning model call: 5 members ×
// 2000 rows through 6 → 200 → 200 → 200 → 8, swish (benchmarks should run
// with OPENBLAS_CORETYPE unset).
func BenchmarkForward(b *testing.B) {
	cfg := Config{Members: 5, In: 6, Hidden: []int{200, 200, 200}, Out: 8, Activation: Swish}
	const rows = 2000
	m := mustNew(b, cfg, 1)
	x := randInput(rng.New(2), cfg.Members*rows*cfg.In)
	dst := make([]float32, cfg.Members*rows*cfg.Out)
	for _, mode := range []string{"blas", "packed-fp32", "packed-bf16"} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", mode, threads), func(b *testing.B) {
				ev := NewEvaluator(m, threads)
				if mode != "blas" {
					ev.Close()
					var err error
					if ev, err = NewPackedEvaluator(m, threads, map[string]Precision{"packed-fp32": FP32, "packed-bf16": BF16}[mode]); err != nil {
						b.Skip(err)
					}
				}
				defer ev.Close()
				b.ReportAllocs()
				for b.Loop() {
					if err := ev.Forward(dst, x, rows); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(flops(cfg, rows)/sec/1e9, "GFLOP/s")
				b.ReportMetric(sec*1e3, "ms/call")
			})
		}
	}
}

// BenchmarkTrainStep is one training step of a PE model (5 members,
// 3 × 200 swish, 6 inputs, 2 × 4 outputs): forward, Gaussian loss,
// backward, weight decay and Adam, at PETS's batch of 32 and at 256.
func BenchmarkTrainStep(b *testing.B) {
	cfg := Config{Members: 5, In: 6, Hidden: []int{200, 200, 200}, Out: 8, Activation: Swish}
	for _, rows := range []int{32, 256} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("batch=%d/goroutines=%d", rows, threads), func(b *testing.B) {
				m := mustNew(b, cfg, 1)
				src := rng.New(2)
				x := randInput(src, cfg.Members*rows*cfg.In)
				y := randInput(src, cfg.Members*rows*4)
				g := NewGaussian(4)
				p := NewPass(m, threads)
				defer p.Close()
				opt := NewAdam(1e-3)
				dOut := make([]float32, cfg.Members*rows*cfg.Out)
				lambda := []float32{2.5e-5, 5e-5, 7.5e-5, 1e-4}
				params, grads := [][]float32{m.Params()}, [][]float32{p.Grad}
				b.ReportAllocs()
				for b.Loop() {
					out, _ := p.Forward(x, rows)
					g.Loss(out, y, nil, cfg.Members, rows, dOut, nil, nil)
					p.Backward(dOut)
					m.WeightDecay(lambda, p.Grad)
					opt.Step(params, grads)
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(3*flops(cfg, rows)/sec/1e9, "GFLOP/s")
				b.ReportMetric(sec*1e3, "ms/step")
				b.ReportMetric(float64(rows)/sec, "samples/s/member")
			})
		}
	}
}
