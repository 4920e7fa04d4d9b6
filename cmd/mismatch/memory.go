package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/memory"
	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/study"
	"github.com/mismatch-rl/mismatch/study/attack"
)

// memoryFlag is --max-memory: the bound an estimate of a command's memory
// is checked against before anything is allocated.
type memoryFlag struct{ value string }

func (m *memoryFlag) register(f *pflag.FlagSet) {
	f.StringVar(&m.value, "max-memory", "", "refuse settings estimated to need more memory than this (for example 8G; default: this machine's memory)")
}

// check refuses an estimate over the limit as bad input.
func (m *memoryFlag) check(e memory.Estimate) error {
	limit, where := memory.Machine(), "this machine's memory"
	if m.value != "" {
		v, err := memory.Parse(m.value)
		if err != nil {
			return badInput("--max-memory: %v", err)
		}
		limit, where = v, "--max-memory"
	}
	if limit == 0 {
		return nil // nothing to check against
	}
	if err := e.Check(limit, where); err != nil {
		return badInput("%v", err)
	}
	return nil
}

// record starts this invocation's provenance in dir (made if need be),
// kept current once a minute, and returns the function that stamps its end
// with err's outcome.
func record(ctx context.Context, dir, precision string) func(err error) {
	end := provenance.Track(dir, provenance.New(os.Args, precision), time.Minute)
	return func(err error) {
		switch {
		case ctx.Err() != nil:
			_ = end("stopped")
		case err != nil:
			_ = end("failed")
		default:
			_ = end("done")
		}
	}
}

// precisionNotice says, once, that bf16 planning falls back to fp32 on a
// machine that cannot run it.
func precisionNotice(planners ...planning.Config) {
	for _, p := range planners {
		if p.Precision == nn.BF16 && !nn.BF16Supported() {
			fmt.Fprintln(os.Stderr, "note: precision bf16 needs AVX512_BF16 (and oneDNN), which this machine lacks: planning in fp32")
			return
		}
	}
}

// transitions estimates the memory of n transitions for task, held once
// in a buffer and once more in a copy (a subset, a training matrix, a
// file being written).
func transitions(task env.Task, n float64) float64 {
	return 2 * n * data.TransitionBytes(task.ObservationSpace().Dim(), task.ActionSpace().Dim())
}

// petsMemory estimates a PETS run: the model being trained, the planner,
// and the data of every trial, which training copies into its matrices.
func petsMemory(c pets.Config, task env.Task, prefix string) memory.Estimate {
	steps := float64(task.EpisodeSteps())
	n := float64(c.RandomTrials+c.Trials) * steps
	in := float64(task.InputDim() + task.ActionSpace().Dim() + task.ObservationSpace().Dim())
	return memory.Estimate{
		{What: prefix + "model.members × " + prefix + "model.hidden, trained", Bytes: c.Model.TrainingBytes(task, c.Train.BatchSize)},
		{What: prefix + "planner.population × " + prefix + "planner.particles × " + prefix + "planner.horizon", Bytes: c.Planner.Bytes(task, c.Model)},
		{What: prefix + "random_trials + " + prefix + "trials (the data of every episode)", Bytes: transitions(task, n) + 4*n*in},
	}
}

// studyMemory estimates a study: its datasets, held together while cells
// are evaluated; the population's preparation, one model at a time or up
// to workers PETS runs at once; and each worker's model and planner.
func studyMemory(s study.Spec, task env.Task, workers int) memory.Estimate {
	var e memory.Estimate
	od, ad := task.ObservationSpace().Dim(), task.ActionSpace().Dim()
	steps := float64(task.EpisodeSteps())
	for i, d := range s.Datasets {
		var n float64
		switch d.Kind {
		case "expert":
			n = 3 * float64(d.Episodes) * steps
			e = append(e, memory.Part{What: fmt.Sprintf("datasets[%d].planner", i), Bytes: d.Planner.SimBytes(task)})
		case "grid":
			n = math.Pow(float64(d.Points), float64(od+ad))
		case "uniform":
			n = float64(d.Samples)
		case "on-policy":
			if p := s.Population; p.Kind == "pets" {
				n = float64(p.Runs) * float64(p.PETS.RandomTrials+p.PETS.Trials) * steps
			}
		}
		e = append(e, memory.Part{What: fmt.Sprintf("datasets[%d] (%s)", i, d.Kind), Bytes: transitions(task, n)})
	}
	p := s.Population
	switch p.Kind {
	case "pets":
		// Up to --workers runs at once (study.Options.Workers).
		at := max(min(workers, p.Runs), 1)
		for _, part := range petsMemory(p.PETS, task, "population.pets.") {
			if at > 1 {
				part.What += fmt.Sprintf(", on each of %d runs at once", at)
				part.Bytes *= float64(at)
			}
			e = append(e, part)
		}
	case "train", "epochs", "reweight":
		e = append(e, memory.Part{What: "population.model.members × population.model.hidden, trained", Bytes: p.Model.TrainingBytes(task, p.Train.BatchSize)})
	}
	model := p.Model
	if p.Kind == "pets" {
		model = p.PETS.Model
	}
	if p.Kind == "train" {
		for _, cl := range p.Classes {
			if m := p.Model.WithClass(cl); m.Bytes(task) > model.Bytes(task) {
				model = m
			}
		}
	}
	w := float64(max(workers, 1))
	e = append(e, memory.Part{What: "evaluation.planner.population × particles × horizon, on each of --workers",
		Bytes: w * (model.Bytes(task) + s.Evaluation.Planner.Bytes(task, model))})
	return e
}

// attackMemory estimates the adversarial search: its directions and
// CMA-ES's covariance, the lures, and each worker's model and planners.
func attackMemory(c attack.Config, m *dynamics.Model, task env.Task, held float64) memory.Estimate {
	params := float64(len(m.Net.Params()))
	if c.Subset != "all" {
		last := m.Net.Layers[len(m.Net.Layers)-1]
		params = float64(len(last.W) + len(last.B))
	}
	dims := float64(c.Dims)
	l := c.Lure
	starts, steps := float64(max(l.Starts, 2000)), float64(max(l.Steps, 8))
	cfg := m.Config()
	w := float64(max(c.Workers, 1))
	return memory.Estimate{
		{What: "dims × the subset's weights (search directions)", Bytes: 4 * dims * params},
		{What: "dims² (CMA-ES's covariance and its factors)", Bytes: 3 * 8 * dims * dims},
		{What: "lure.starts × lure.steps (imagined transitions) and the held-out data", Bytes: transitions(task, starts*steps+held) + cfg.PredictBytes(task, int(starts))},
		{What: "search.planner and final.planner, on each of workers", Bytes: w * (cfg.Bytes(task) + max(c.Search.Planner.Bytes(task, cfg), c.Final.Planner.Bytes(task, cfg)))},
	}
}
