package dynamics

import (
	"context"
	"fmt"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/rng"
)

// BenchmarkEpoch is one training epoch of a PE model (5 members, 3 × 200
// swish) at PETS's batch of 32 and at 256: over 1000 cartpole-sized
// transitions (5 features + 1 action in, 4 × 2 out), and over 10 000
// half-cheetah-sized ones (24 in, 18 × 2 out; a study's run holds as many
// by its tenth trial), where the Gaussian head's loss weighs more. mbrl-lib
// (PyTorch 1.13, 2 threads) takes 0.3–0.6 s per cartpole epoch at batch
// 32.
func BenchmarkEpoch(b *testing.B) {
	epoch(b, "", 4, 1, 1000)
	epoch(b, "halfcheetah/", 18, 6, 10000)
}

func epoch(b *testing.B, name string, od, ad, n int) {
	sp := spec{name: "bench", od: od, ad: ad}
	buf := data.NewBuffer(od, ad)
	src := rng.New(1)
	for i := 0; i < n; i++ {
		o := make([]float32, od)
		src.FillNormal(o, 0, 1)
		nx := make([]float32, od)
		src.FillNormal(nx, 0, 1)
		a := make([]float32, ad)
		src.FillNormal(a, 0, 1)
		buf.Add(o, a, nx, 0, false, true)
	}
	for _, batch := range []int{32, 256} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%sbatch=%d/goroutines=%d", name, batch, threads), func(b *testing.B) {
				m, _ := New(sp, Config{Class: PE, Members: 5, Hidden: []int{200, 200, 200}, Activation: nn.Swish,
					WeightDecay: []float32{2.5e-5, 5e-5, 7.5e-5, 1e-4}}, 2)
				tr := NewTrainer(m, threads)
				defer tr.Close()
				for b.Loop() {
					if _, err := tr.Train(context.Background(), buf, TrainConfig{LR: 1e-3, Epochs: 1, BatchSize: batch, Seed: 3}); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec, "s/epoch")
				b.ReportMetric(float64(n)/sec, "samples/s/member")
			})
		}
	}
}
