package mujoco

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mismatch-rl/mismatch/env"
)

// BenchmarkStep measures environment steps per second on one goroutine:
// through Step (one cgo call per step, observation and reward in Go) and
// through Rollout (one cgo call per 100 steps).
func BenchmarkStep(b *testing.B) {
	for _, task := range []env.Task{CartpoleSwingup, HalfCheetah} {
		b.Run(task.Name()+"/Step", func(b *testing.B) {
			e := newEnv(b, task)
			e.Reset(1)
			a := make([]float32, task.ActionSpace().Dim())
			n := 0
			for b.Loop() {
				a[0] = float32(n%7)*0.1 - 0.3
				if _, _, _, trunc, err := e.Step(a); err != nil {
					b.Fatal(err)
				} else if trunc {
					e.Reset(uint64(n))
				}
				n++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
		b.Run(task.Name()+"/Rollout", func(b *testing.B) {
			e := newEnv(b, task)
			e.Reset(1)
			const h = 100
			ad, od := task.ActionSpace().Dim(), task.ObservationSpace().Dim()
			acts := make([]float32, h*ad)
			for i := range acts {
				acts[i] = float32(i%7)*0.1 - 0.3
			}
			obs := make([]float32, h*od)
			rew := make([]float64, h)
			st := e.State()
			for b.Loop() {
				e.SetState(st)
				if err := e.Rollout(acts, h, obs, rew); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*h)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}

// BenchmarkParallelRollouts rolls 64 action sequences of 30 steps out from
// one state on 1 and 2 goroutines, each with its own clone.
func BenchmarkParallelRollouts(b *testing.B) {
	for _, task := range []env.Task{CartpoleSwingup, HalfCheetah} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", task.Name(), workers), func(b *testing.B) {
				const seqs, h = 64, 30
				root := newEnv(b, task)
				root.Reset(2)
				st := root.State()
				ad, od := task.ActionSpace().Dim(), task.ObservationSpace().Dim()
				clones := make([]env.Simulator, workers)
				for w := range clones {
					c, err := root.Clone()
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					clones[w] = c
				}
				acts := make([]float32, seqs*h*ad)
				for i := range acts {
					acts[i] = float32(i%11)*0.05 - 0.25
				}
				for b.Loop() {
					var wg sync.WaitGroup
					for w := 0; w < workers; w++ {
						wg.Add(1)
						go func(w int) {
							defer wg.Done()
							obs := make([]float32, h*od)
							rew := make([]float64, h)
							for s := w; s < seqs; s += workers {
								clones[w].SetState(st)
								if err := clones[w].Rollout(acts[s*h*ad:(s+1)*h*ad], h, obs, rew); err != nil {
									b.Error(err)
								}
							}
						}(w)
					}
					wg.Wait()
				}
				b.ReportMetric(float64(b.N*seqs*h)/b.Elapsed().Seconds(), "steps/s")
			})
		}
	}
}
