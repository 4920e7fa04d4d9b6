// Command precision measures what bfloat16 planning costs in accuracy, for
// a trained model: the relative error of its one-step predictions in bf16
// against fp32 on held-out transitions, and the reward MPC earns with the
// model planned in fp32 and in bf16 from the same start states.
//
//	go run ./bench/precision --model runs/bench-cartpole-seed1/models/trial_015.safetensors \
//	    --data runs/bench-cartpole-seed1/data.npz --episodes 10
//
// It needs a CPU with AVX512_BF16.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"time"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/study"
	"github.com/mismatch-rl/mismatch/study/stats"

	_ "github.com/mismatch-rl/mismatch/env/classic"
	_ "github.com/mismatch-rl/mismatch/env/mujoco"
)

func main() {
	modelPath := flag.String("model", "", "checkpoint")
	dataPath := flag.String("data", "", "held-out transitions (.npz)")
	episodes := flag.Int("episodes", 10, "MPC episodes per precision")
	preset := flag.String("preset", "default", "PETS preset whose planner plans")
	workers := flag.Int("workers", 2, "episodes run side by side")
	flag.Parse()
	if !nn.BF16Supported() {
		log.Fatal("this CPU has no AVX512_BF16 (or this build no oneDNN)")
	}
	m, err := dynamics.Load(*modelPath, nil)
	if err != nil {
		log.Fatal(err)
	}
	task, err := env.Lookup(m.Spec().Name())
	if err != nil {
		log.Fatal(err)
	}
	held, err := data.ReadNPZ(*dataPath)
	if err != nil {
		log.Fatal(err)
	}

	// One-step predictions of every member, in each precision.
	n, E, od := held.Len(), m.Members(), m.ObsDim()
	obs := make([]float32, E*n*od)
	act := make([]float32, E*n*m.ActDim())
	for e := 0; e < E; e++ {
		copy(obs[e*n*od:], held.Obs)
		copy(act[e*n*m.ActDim():], held.Act)
	}
	predict := func(p nn.Precision) []float32 {
		pr, err := m.NewPackedPredictor(2, p)
		if err != nil {
			log.Fatal(err)
		}
		defer pr.Close()
		mean, variance := make([]float32, E*n*od), make([]float32, E*n*od)
		if err := pr.Moments(mean, variance, obs, act, n, nil); err != nil {
			log.Fatal(err)
		}
		return mean
	}
	fp, bf := predict(nn.FP32), predict(nn.BF16)
	var diff, change, miss float64
	for i := range fp {
		o, next := float64(obs[i]), float64(held.Next[i%(n*od)])
		diff += sq(float64(bf[i]) - float64(fp[i]))
		change += sq(float64(fp[i]) - o)
		miss += sq(float64(fp[i]) - next)
	}
	fmt.Printf("%s, %d held-out transitions, %d members:\n", *modelPath, n, E)
	fmt.Printf("  one-step mean prediction, bf16 against fp32: RMS difference %.3g = %.3g%% of the RMS predicted change (%.3g); the fp32 model misses the data by %.3g\n",
		math.Sqrt(diff/float64(len(fp))), 100*math.Sqrt(diff/change), math.Sqrt(change/float64(len(fp))), math.Sqrt(miss/float64(len(fp))))

	cfg, err := pets.Preset(*preset, task.Name())
	if err != nil {
		log.Fatal(err)
	}
	var means [2]float64
	var ses [2]float64
	for i, p := range []nn.Precision{nn.FP32, nn.BF16} {
		planner := cfg.Planner
		planner.Precision = p
		t0 := time.Now()
		eps, err := study.ScoreEpisodes(context.Background(), task, m, study.EvalSpec{Episodes: *episodes, Planner: planner}, 7, 7, *workers)
		if err != nil {
			log.Fatal(err)
		}
		if eps.Faults != nil {
			log.Fatal(eps.Faults)
		}
		mean, sd := stats.MeanStd(eps.Rewards)
		means[i], ses[i] = mean, sd/math.Sqrt(float64(len(eps.Rewards)))
		fmt.Printf("  %s planner (%s preset): reward %.2f ± %.2f (standard error) over %d episodes %v, %s\n", p, *preset, mean, ses[i], len(eps.Rewards), round(eps.Rewards), time.Since(t0).Round(time.Second))
	}
	se := math.Hypot(ses[0], ses[1])
	fmt.Printf("  difference bf16 − fp32: %.2f; one standard error of the difference %.2f: %s\n", means[1]-means[0], se,
		map[bool]string{true: "within", false: "OUTSIDE"}[math.Abs(means[1]-means[0]) <= se])
}

func sq(x float64) float64 { return x * x }

func round(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(v*10) / 10
	}
	return out
}
