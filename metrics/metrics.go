// Package metrics scores dynamics models with measures that might predict
// how well a model controls better than one-step likelihood does — the
// question the objective-mismatch paper leaves open — and ranks them by
// how well they predict closed-loop reward (see Rank).
//
// A Metric turns a model and a study's data into named values (columns
// such as "nll@expert"); metrics are registered by name, so a user can add
// one in Go with Register.
package metrics

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/planning"
)

// Dataset is a named set of transitions a model is scored on.
type Dataset struct {
	Name string
	Buf  *data.Buffer
}

// Data is what metrics score a model against.
type Data struct {
	Task     env.Task
	Datasets []Dataset
	// Expert is the reference trajectory (the expert's episodes), for
	// metrics that weigh data by its distance to it or plan from its
	// states; nil when there is none. ExpertName is its dataset's name.
	Expert     *data.Buffer
	ExpertName string
	// Horizon is the planner's horizon, the longest open-loop rollout
	// worth scoring.
	Horizon int
	// Planner is the planner the study evaluates models with, and Seed
	// the study's seed: decision metrics plan with them.
	Planner planning.Config
	Seed    uint64
	// States is how many expert states decision metrics plan from
	// (0: 8).
	States  int
	Threads int

	decisionCache
}

// A Metric scores one model.
type Metric interface {
	// Name is the metric's registered name.
	Name() string
	// Doc says what the metric measures, in one sentence.
	Doc() string
	// Score returns the model's values by column. Every column that a
	// lower value of means a better model starts with the metric's name;
	// columns are named "name@dataset" when they depend on a dataset.
	Score(ctx context.Context, m *dynamics.Model, d *Data) (map[string]float64, error)
}

var (
	mu       sync.Mutex
	registry = map[string]Metric{}
)

// Register adds a metric under its name; a name registered twice panics,
// as a programming error.
func Register(m Metric) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[m.Name()]; dup {
		panic(fmt.Sprintf("metrics: %q registered twice", m.Name()))
	}
	registry[m.Name()] = m
}

// Lookup returns the metric registered under name.
func Lookup(name string) (Metric, error) {
	mu.Lock()
	defer mu.Unlock()
	m, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("metrics: no metric %q (have %v)", name, namesLocked())
	}
	return m, nil
}

// Names lists the registered metrics, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	return namesLocked()
}

func namesLocked() []string {
	var n []string
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Column names a metric's value on a dataset.
func Column(metric, dataset string) string { return metric + "@" + dataset }

// Close frees what metrics kept while scoring (the decision metric's
// simulator).
func (d *Data) Close() {
	if d.truthSim != nil {
		d.truthSim.Close()
		d.truthSim = nil
	}
}
