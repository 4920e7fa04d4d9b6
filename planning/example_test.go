package planning_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/planning"
)

// Train a probabilistic ensemble (PE) on transitions in an .npz file and
// plan one action with CEM through it.
func Example() {
	// Some transitions to learn from, in mbrl-lib's replay-buffer layout.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data.npz")
	random, _ := data.RandomEpisodes(classic.PointMass, 20, 1)
	random.WriteNPZ(path)

	task := classic.PointMass
	buf, err := data.ReadNPZ(path)
	if err != nil {
		log.Fatal(err)
	}
	cfg := dynamics.DefaultConfig() // PE: 5 members, 3 × 200 swish
	cfg.Hidden = []int{32, 32}
	model, err := dynamics.New(task, cfg, 1)
	if err != nil {
		log.Fatal(err)
	}
	trainer := dynamics.NewTrainer(model, 0)
	defer trainer.Close()
	train := dynamics.DefaultTrainConfig()
	train.Epochs = 20
	if _, err := trainer.Train(context.Background(), buf, train); err != nil {
		log.Fatal(err)
	}

	plan := planning.DefaultConfig() // CEM, PETS's settings
	plan.Horizon, plan.Population, plan.Elites, plan.Particles = 10, 100, 10, 4
	agent, err := planning.NewModelAgent(task, model, plan, 0, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close()
	action := make([]float32, 1)
	if err := agent.Act(context.Background(), action, []float32{0, 0}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("trained on", buf.Len(), "transitions; action in [-1, 1]:", action[0] >= -1 && action[0] <= 1)
	// Output: trained on 1000 transitions; action in [-1, 1]: true
}
