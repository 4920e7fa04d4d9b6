package pets

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mismatch-rl/mismatch/report"
)

// RewardPlot is the reward of every trial of a PETS run.
func RewardPlot(rows []Trial) (report.Figure, error) {
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
	return report.LinePlot("reward", "Episode reward per trial", "trial", "reward", []report.Series{mpc, random}, nil)
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
	fig, err := RewardPlot(rows)
	if err != nil {
		return err
	}
	if err := fig.Write(dir); err != nil {
		return err
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
	p.Heading("Trials")
	var table [][]string
	for _, r := range rows {
		table = append(table, []string{strconv.Itoa(r.Trial), r.Kind, report.Number(r.Reward), strconv.Itoa(r.Steps), strconv.Itoa(r.Transitions),
			strconv.Itoa(r.Epochs), report.Number(r.TrainLoss), report.Number(r.HoldOutNLL), report.Number(r.TrainSec), report.Number(r.StepMillis), r.Model})
	}
	p.Table([]string{"trial", "kind", "reward", "steps", "transitions", "epochs", "train loss", "held-out NLL", "train s", "plan ms/step", "model"}, table)
	p.Heading("Configuration")
	p.Pre(string(cfg))
	return p.Write(filepath.Join(dir, "report.html"))
}
