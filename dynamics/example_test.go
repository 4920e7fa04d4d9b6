package dynamics_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/classic"
)

// Load a checkpoint (here one just saved; PETS runs save one per trial in
// models/) and predict the next observation's mean and variance.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "model")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	{
		buf, _ := data.RandomEpisodes(classic.Pendulum, 5, 1)
		cfg := dynamics.DefaultConfig()
		cfg.Hidden = []int{16}
		m, _ := dynamics.New(classic.Pendulum, cfg, 1)
		tr := dynamics.NewTrainer(m, 0)
		train := dynamics.DefaultTrainConfig()
		train.Epochs = 5
		tr.Train(context.Background(), buf, train)
		tr.Close()
		if err := m.Save(path); err != nil {
			log.Fatal(err)
		}
	}

	// The sidecar (model.json) names the task, so no task is given here.
	m, err := dynamics.Load(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	p := m.NewPredictor(0)
	defer p.Close()
	// One row through every member: the members' predictions, one after
	// another.
	E, od := m.Members(), m.ObsDim()
	obs, act := make([]float32, E*od), make([]float32, E*m.ActDim())
	for e := 0; e < E; e++ {
		copy(obs[e*od:], []float32{1, 0, 0}) // cos θ, sin θ, θ̇: hanging still
	}
	mean, variance := make([]float32, E*od), make([]float32, E*od)
	if err := p.Moments(mean, variance, obs, act, 1, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Spec().Name(), m.Config().Class, "of", E, "members predicts", len(mean)/E, "means and variances per member")
	// Output: pendulum PE of 5 members predicts 3 means and variances per member
}
