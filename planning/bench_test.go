package planning

import (
	"context"
	"fmt"
	"testing"

	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/mujoco"
	"github.com/mismatch-rl/mismatch/nn"
)

// BenchmarkControlStep is one PETS control step at mbrl-lib's cartpole
// notebook settings: a PE model of 5 members × 3 hidden layers of 200,
// horizon 15, CEM with population 500, 50 elites and 5 iterations, 20
// particles per sequence, TS∞ — 75 model calls of 10 000 rows. Run with
// OPENBLAS_CORETYPE unset. mbrl-lib takes about 5.2 s per step on the
// Zen 5 machines DESIGN.md measured.
func BenchmarkControlStep(b *testing.B) {
	task := mujoco.CartpoleSwingup
	m, err := dynamics.New(task, dynamics.Config{Class: dynamics.PE, Members: 5, Hidden: []int{200, 200, 200}, Activation: nn.Swish}, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", threads), func(b *testing.B) {
			obj, err := NewModelObjective(task, m, 15, 20, TSInf, threads, 2)
			if err != nil {
				b.Fatal(err)
			}
			defer obj.Close()
			cem, _ := NewCEM(CEMConfig{Horizon: 15, Population: 500, Elites: 50, Iterations: 5, Alpha: 0.1, MinVariance: 0.001}, BoundsOf(task.ActionSpace()), 3)
			obj.SetStart([]float32{0, 0.1, 0, 0})
			plan := make([]float32, 15)
			for b.Loop() {
				if err := cem.Optimize(context.Background(), plan, obj, plan); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			// 75 calls × 10 000 rows × 2·(6·200 + 200·200·2 + 200·8) FLOP.
			b.ReportMetric(sec, "s/step")
			b.ReportMetric(75*10000*2*82800/sec/1e9, "GFLOP/s")
		})
	}
}
