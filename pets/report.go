package pets

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/report"
)

// RewardPlot is the reward of every trial of a PETS run, with the task's
// reference reward (see env.Referencer) as a dashed line where known.
func RewardPlot(rows []Trial, task string) (report.Figure, error) {
	var mpc, random report.Series
	mpc.Name, random.Name = "MPC trials", "random-action trials"
	mpc.Points, random.Points = true, true
	for _, r := range rows {
		s := &mpc
		if r.Kind == KindRandom {
			s = &random
		}
		s.X = append(s.X, float64(r.Trial))
		s.Y = append(s.Y, r.Reward)
	}
	series := []report.Series{mpc, random}
	if t, err := env.Lookup(task); err == nil && len(rows) > 0 {
		if ref, ok := t.(env.Referencer); ok {
			if v, src := ref.ReferenceReward(); src != "" {
				series = append(series, report.Series{Name: fmt.Sprintf("reference %.0f: %s", v, src), Dashed: true,
					X: []float64{float64(rows[0].Trial), float64(rows[len(rows)-1].Trial)}, Y: []float64{v, v}})
			}
		}
	}
	return report.LinePlot("reward", "Episode reward per trial", "trial", "reward", series, nil)
}

// fitPlots are the model's fit before each MPC trial: its training loss
// and held-out NLL, and its held-out MSE.
func fitPlots(rows []Trial) ([]report.Figure, error) {
	var loss, nll, mse report.Series
	loss.Name, nll.Name, mse.Name = "training loss (last epoch)", "held-out NLL (nats per transition)", "held-out MSE"
	loss.Points, nll.Points, mse.Points = true, true, true
	for _, r := range rows {
		if r.Kind != KindMPC {
			continue
		}
		x := float64(r.Trial)
		loss.X, loss.Y = append(loss.X, x), append(loss.Y, r.TrainLoss)
		nll.X, nll.Y = append(nll.X, x), append(nll.Y, r.HoldOutNLL)
		mse.X, mse.Y = append(mse.X, x), append(mse.Y, r.HoldOutMSE)
	}
	a, err := report.LinePlot("loss", "Training loss and held-out NLL before each trial", "trial", "nats", []report.Series{loss, nll}, nil)
	if err != nil {
		return nil, err
	}
	b, err := report.LinePlot("mse", "Held-out squared error before each trial", "trial", "MSE", []report.Series{mse}, nil)
	if err != nil {
		return nil, err
	}
	return []report.Figure{a, b}, nil
}

// WriteReport writes a run directory's figures and report.html from its
// config and trials table.
func WriteReport(dir string) error {
	f, err := os.Open(filepath.Join(dir, TrialsFile))
	if err != nil {
		return err
	}
	rows, err := ReadTrials(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, TrialsFile), err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return err
	}
	var c struct {
		Task string `yaml:"task"`
	}
	yaml.Unmarshal(cfg, &c)
	fig, err := RewardPlot(rows, c.Task)
	if err != nil {
		return err
	}
	fits, err := fitPlots(rows)
	if err != nil {
		return err
	}
	for _, f := range append([]report.Figure{fig}, fits...) {
		if err := f.Write(dir); err != nil {
			return err
		}
	}
	p := &report.Page{Title: "PETS run " + filepath.Base(dir)}
	best, bestR := -1, 0.0
	for _, r := range rows {
		if r.Kind == KindMPC && (best < 0 || r.Reward > bestR) {
			best, bestR = r.Trial, r.Reward
		}
	}
	if best >= 0 {
		p.Paragraph(fmt.Sprintf("Best trial: %d, reward %s.", best, report.Number(bestR)))
	}
	p.Figure(fig, "Reward of each trial")
	p.Figure(fits[0], "The model's training loss (last epoch) and held-out NLL, before each MPC trial (held-out data: train.hold_out of all data)")
	p.Figure(fits[1], "The model's held-out squared error before each MPC trial")
	p.Heading("Trials")
	var table [][]string
	for _, r := range rows {
		table = append(table, []string{strconv.Itoa(r.Trial), r.Kind, report.Number(r.Reward), strconv.Itoa(r.Steps), strconv.Itoa(r.Transitions),
			strconv.Itoa(r.Epochs), report.Number(r.TrainLoss), report.Number(r.HoldOutNLL), report.Number(r.HoldOutMSE), report.Number(r.TrainSec), report.Number(r.StepMillis), r.Model})
	}
	p.Table([]string{"trial", "kind", "reward", "steps", "transitions", "epochs", "train loss", "held-out NLL", "held-out MSE", "train s", "plan ms/step", "model"}, table)
	p.Heading("Configuration")
	p.Pre(string(cfg))
	p.Provenance(dir)
	return p.Write(filepath.Join(dir, "report.html"))
}
