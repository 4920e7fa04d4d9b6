package study_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mismatch-rl/mismatch/study"

	_ "github.com/mismatch-rl/mismatch/env/classic" // registers the point mass
)

// Run a small likelihood-vs-reward study on the point mass: two short PETS
// runs make the population, each model is scored by its likelihood on the
// datasets and by MPC episodes, and the two are correlated per dataset.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "study")
	defer os.RemoveAll(dir)
	s, err := study.Preset("fast", study.LikelihoodReward, "pointmass")
	if err != nil {
		log.Fatal(err)
	}
	s.Datasets[0].Episodes, s.Datasets[0].Planner.Population, s.Datasets[0].Planner.Elites = 1, 50, 5 // expert
	s.Datasets[2].Points = 3                                                                          // grid
	p := &s.Population.PETS
	s.Population.Runs, p.Trials, p.Train.Epochs, p.Model.Hidden = 2, 2, 5, []int{16}
	p.Planner.Population, p.Planner.Elites = 40, 5
	s.Evaluation.Episodes, s.Evaluation.Planner = 1, p.Planner
	res, err := study.Run(context.Background(), s, study.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Cells), "models")
	for _, c := range res.Correlations {
		fmt.Println(c.Dataset, c.N, "models, Pearson defined:", c.Pearson.Defined)
	}
	// Output:
	// 4 models
	// expert 4 models, Pearson defined: true
	// on-policy 4 models, Pearson defined: true
	// grid 4 models, Pearson defined: true
}
