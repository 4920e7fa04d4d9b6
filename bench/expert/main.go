// Command expert runs episodes of planning on the true simulator (the
// objective-mismatch paper's expert) and prints each episode's reward and
// the planning time per step: CEM with the flags' settings, or with
// -preset the planner of that PETS preset for the task (what PETS with a
// perfect model would do).
//
//	go run ./bench/expert -task cartpole-swingup -episodes 3 -pop 200
//	go run ./bench/expert -task halfcheetah -preset fast -episodes 1
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/env"
	_ "github.com/mismatch-rl/mismatch/env/classic"
	_ "github.com/mismatch-rl/mismatch/env/mujoco"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/planning"
)

func main() {
	task := flag.String("task", "cartpole-swingup", "task")
	episodes := flag.Int("episodes", 3, "episodes")
	pop := flag.Int("pop", 400, "CEM population")
	elites := flag.Int("elites", 40, "CEM elites")
	horizon := flag.Int("horizon", 25, "planning horizon")
	iters := flag.Int("iters", 5, "CEM iterations")
	threads := flag.Int("threads", 0, "goroutines (0: one per CPU)")
	preset := flag.String("preset", "", "use this PETS preset's planner for the task instead of the CEM flags")
	flag.Parse()
	t, err := env.Lookup(*task)
	if err != nil {
		log.Fatal(err)
	}
	e, err := t.New()
	if err != nil {
		log.Fatal(err)
	}
	sim := e.(env.Simulator)
	cfg := planning.Config{Optimizer: planning.MethodCEM, Horizon: *horizon, Population: *pop, Elites: *elites, Iterations: *iters, Alpha: 0.1, MinVariance: 0.001, Particles: 1, ReplanEvery: 1}
	if *preset != "" {
		pc, err := pets.Preset(*preset, *task)
		if err != nil {
			log.Fatal(err)
		}
		cfg = pc.Planner
		cfg.Particles = 1 // the simulator is deterministic
		fmt.Printf("%s planner of preset %s: %s, population %d, horizon %d, %d iterations\n", *task, *preset, cfg.Optimizer, cfg.Population, cfg.Horizon, cfg.Iterations)
	}
	obj, err := planning.NewSimObjective(sim, cfg.Horizon, *threads)
	if err != nil {
		log.Fatal(err)
	}
	var sum float64
	for ep := 0; ep < *episodes; ep++ {
		agent, err := planning.NewSimAgent(obj, sim, cfg, uint64(ep))
		if err != nil {
			log.Fatal(err)
		}
		t0 := time.Now()
		r, err := data.RunEpisode(context.Background(), sim, agent.Act, uint64(100+ep), nil, nil)
		if err != nil {
			log.Fatal(err)
		}
		sum += r
		fmt.Printf("episode %d: reward %.2f, %.0f ms per planning step\n", ep, r, 1000*time.Since(t0).Seconds()/float64(agent.Plans))
	}
	fmt.Printf("mean reward %.2f over %d episodes\n", sum/float64(*episodes), *episodes)
}
