package planning

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/mujoco"
	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/nn"
)

// BenchmarkControlStep is one PETS control step at mbrl-lib's cartpole
// notebook settings: a PE model of 5 members × 3 hidden layers of 200,
// horizon 15, CEM with population 500, 50 elites and 5 iterations, 20
// particles per sequence, TS∞ — 75 model calls of 10 000 rows, 124 GFLOP —
// in each precision the machine runs, on 1 and 2 goroutines; then the same
// planner on the paper's second task, the half-cheetah (its model 24 → 36
// wide: 138 GFLOP); then, as halfcheetah-fast, the planner of the `fast`
// presets on the half-cheetah (horizon 30, population 200, 20 elites, 3
// iterations, 5 particles: 90 model calls of 1 000 rows, 16.6 GFLOP),
// which PETS runs and the studies' cells spend their time in. It reports
// seconds per step and the step as a multiple of the fp32 floor: the
// FLOPs at the fp32 FMA peak of one core times the goroutines
// (kernel.MeasurePeak; its log line also gives the peak of 2 cores running
// the loop at once, which on the machines measured is twice one core's).
// The FLOPs, and so the floor and the GFLOP/s reported, are the nominal
// ones of every particle's row through the network: the objective
// computes fewer where a sequence's particles on one member share the
// first step (about 5% at the notebook's settings; none with 5 particles
// over 5 members), the first step's network pass once per sequence and
// member (see ModelObjective). Run with OPENBLAS_CORETYPE unset (make
// bench does).
func BenchmarkControlStep(b *testing.B) {
	peak := kernel.MeasurePeak(2)
	b.Logf("CPU %s; fp32 peak %.0f GFLOP/s per core (%s), %.0f on %d cores at once, bf16 %.0f per core; BLAS %s; planning nets on %s in fp32, %s in bf16",
		cpuName(), peak.FP32, peak.ISA, peak.FP32Cores, peak.Cores, peak.BF16, kernel.BLAS(), kernel.NetKernel(false), kernel.NetKernel(true))
	notebook := CEMConfig{Horizon: 15, Population: 500, Elites: 50, Iterations: 5, Alpha: 0.1, MinVariance: 0.001}
	fast := CEMConfig{Horizon: 30, Population: 200, Elites: 20, Iterations: 3, Alpha: 0.1, MinVariance: 0.001}
	for _, s := range []struct {
		name      string
		task      env.Task
		cem       CEMConfig
		particles int
	}{
		{"", mujoco.CartpoleSwingup, notebook, 20},
		{"halfcheetah/", mujoco.HalfCheetah, notebook, 20},
		{"halfcheetah-fast/", mujoco.HalfCheetah, fast, 5},
	} {
		m, err := dynamics.New(s.task, dynamics.Config{Class: dynamics.PE, Members: 5, Hidden: []int{200, 200, 200}, Activation: nn.Swish}, 1)
		if err != nil {
			b.Fatal(err)
		}
		controlStep(b, s.name, s.task, m, s.cem, s.particles, peak)
	}
}

func controlStep(b *testing.B, name string, task env.Task, m *dynamics.Model, cfg CEMConfig, particles int, peak kernel.Peak) {
	// A model call a step and iteration, of every particle's row, at 2
	// FLOPs per multiply-add of every layer.
	var macs int
	for _, l := range m.Net.Layers {
		macs += l.In * l.Out
	}
	flops := float64(cfg.Iterations*cfg.Horizon*cfg.Population*particles) * 2 * float64(macs)
	ad := task.ActionSpace().Dim()
	for _, prec := range []nn.Precision{nn.FP32, nn.BF16} {
		if prec == nn.BF16 && !nn.BF16Supported() {
			b.Logf("no AVX512_BF16 here: bf16 not measured")
			continue
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s%s/goroutines=%d", name, prec, threads), func(b *testing.B) {
				obj, err := NewModelObjective(task, m, cfg.Horizon, particles, TSInf, prec, threads, 2)
				if err != nil {
					b.Fatal(err)
				}
				defer obj.Close()
				cem, _ := NewCEM(cfg, BoundsOf(task.ActionSpace()), 3)
				start := make([]float32, task.ObservationSpace().Dim())
				start[1] = 0.1
				obj.SetStart(start)
				plan := make([]float32, cfg.Horizon*ad)
				for b.Loop() {
					if err := cem.Optimize(context.Background(), plan, obj, plan); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec, "s/step")
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
				if peak.FP32 > 0 {
					b.ReportMetric(sec/(flops/(peak.FP32*float64(threads)*1e9)), "x-fp32-floor")
				}
			})
		}
	}
}

// cpuName is the processor's model name from /proc/cpuinfo.
func cpuName() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
