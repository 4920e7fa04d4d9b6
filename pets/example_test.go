package pets_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mismatch-rl/mismatch/pets"

	_ "github.com/mismatch-rl/mismatch/env/classic" // registers the point mass
)

// Run PETS on the point mass: one random-action trial, then two trials of
// model-predictive control, each trial's model saved in the run directory.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "pets")
	defer os.RemoveAll(dir)
	cfg, err := pets.Preset("fast", "pointmass")
	if err != nil {
		log.Fatal(err)
	}
	cfg.Trials = 2
	cfg.Planner.Population, cfg.Planner.Elites = 50, 5
	rows, err := pets.Run(context.Background(), cfg, pets.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rows {
		if r.Kind == pets.KindMPC {
			fmt.Println("trial", r.Trial, "of", r.Steps, "steps, model", r.Model)
		} else {
			fmt.Println("trial", r.Trial, "of", r.Steps, "random steps")
		}
	}
	// Output:
	// trial 0 of 50 random steps
	// trial 1 of 50 steps, model models/trial_001.safetensors
	// trial 2 of 50 steps, model models/trial_002.safetensors
}
