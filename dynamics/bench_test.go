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
// swish) over 1000 cartpole-sized transitions (5 features + 1 action in,
// 4 × 2 out), at PETS's batch of 32 and at 256. mbrl-lib (PyTorch 1.13,
// 2 threads) takes 0.3–0.6 s per epoch at batch 32.
func BenchmarkEpoch(b *testing.B) {
	sp := spec{name: "bench", od: 4, ad: 1}
	buf := data.NewBuffer(4, 1)
	src := rng.New(1)
	for i := 0; i < 1000; i++ {
		o := make([]float32, 4)
		src.FillNormal(o, 0, 1)
		nx := make([]float32, 4)
		src.FillNormal(nx, 0, 1)
		buf.Add(o, []float32{src.Float32()}, nx, 0, false, true)
	}
	for _, batch := range []int{32, 256} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("batch=%d/goroutines=%d", batch, threads), func(b *testing.B) {
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
				b.ReportMetric(1000/sec, "samples/s/member")
			})
		}
	}
}
