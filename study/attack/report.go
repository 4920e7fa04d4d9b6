package attack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/report"
)

// File is the attack's summary, written into its output directory.
const File = "attack.json"

// WriteReport saves an attack's result in dir: attack.json, the adversarial
// model (adversary.safetensors), figures and report.html. expert, if not
// nil, is drawn beside the two models' trajectories.
func WriteReport(dir string, c Config, res *Result, expert *data.Buffer, obsNames []string) error {
	if err := os.MkdirAll(filepath.Join(dir, "figures"), 0o755); err != nil {
		return err
	}
	if err := res.Model.Save(filepath.Join(dir, "adversary.safetensors")); err != nil {
		return err
	}
	summary := map[string]any{
		"before":      res.Before,
		"after":       res.After,
		"start":       res.Start,
		"step":        res.Step,
		"evaluations": res.Evaluations,
		"best":        res.BestPerIteration,
		"lures":       res.Lures,
		"lure_weight": res.LureWeight,
	}
	js, err := json.MarshalIndent(summary, "", "  ")
	if err != nil {
		return err
	}
	if err := safefile.WriteBytes(filepath.Join(dir, File), append(js, '\n')); err != nil {
		return err
	}
	var figs []report.Figure
	var caps []string
	var it, best []float64
	for i, b := range res.BestPerIteration {
		if b < penalty {
			it, best = append(it, float64(i+1)), append(best, b)
		}
	}
	if len(res.BestPerIteration) > 0 {
		f, err := report.LinePlot("attack-convergence", "Adversarial search", "CMA-ES iteration", "best reward found (search planner)",
			[]report.Series{{Name: "best feasible candidate", X: it, Y: best, Points: true}}, nil)
		if err != nil {
			return err
		}
		figs, caps = append(figs, f), append(caps, "The lowest search reward among candidates that keep the likelihood constraint, after each iteration.")
	}
	od := len(obsNames)
	for d := 0; d < min(od, 4); d++ {
		series := []report.Series{
			trajectory("original model", res.OriginalEpisodes[0], od, d),
			trajectory("adversarial model", res.AdversaryEpisodes[0], od, d),
		}
		if expert != nil {
			series = append(series, trajectory("expert", expert.Next, od, d))
		}
		name := fmt.Sprintf("trajectory-%d", d)
		f, err := report.LinePlot(name, "Episode trajectory: "+obsNames[d], "step", obsNames[d], series, nil)
		if err != nil {
			return err
		}
		figs, caps = append(figs, f), append(caps, fmt.Sprintf("%s over the first final episode of each model%s.", obsNames[d],
			map[bool]string{true: ", and along the expert's trajectory", false: ""}[expert != nil]))
	}
	if expert != nil {
		// What each model predicts along the expert's actions, open loop:
		// the adversary is as likely on the data yet believes another
		// future.
		if eps := expert.Episodes(); len(eps) > 1 {
			idx := make([]int, 0, eps[0].End-eps[0].Start)
			for i := eps[0].Start; i < eps[0].End; i++ {
				idx = append(idx, i)
			}
			expert = expert.Subset(idx)
		}
		var along [2][]float32
		for i, m := range []*dynamics.Model{res.Original, res.Model} {
			if m == nil {
				continue
			}
			var err error
			if along[i], err = m.PredictAlong(expert); err != nil {
				return err
			}
		}
		for d := 0; d < min(od, 4) && along[0] != nil; d++ {
			series := []report.Series{
				trajectory("expert (true)", expert.Next, od, d),
				trajectory("original model's prediction", along[0], od, d),
				trajectory("adversarial model's prediction", along[1], od, d),
			}
			f, err := report.LinePlot(fmt.Sprintf("predicted-%d", d), "Predicted along the expert trajectory: "+obsNames[d], "step", obsNames[d], series, nil)
			if err != nil {
				return err
			}
			figs, caps = append(figs, f), append(caps, fmt.Sprintf("%s predicted by each model from the expert's first state under the expert's actions, each prediction fed back (ensemble mean).", obsNames[d]))
		}
	}
	page := &report.Page{Title: "Adversarial model search"}
	drop := 100 * (res.Before.RewardMean - res.After.RewardMean) / abs(res.Before.RewardMean)
	page.Paragraph(fmt.Sprintf("Reward %.2f ± %.2f → %.2f ± %.2f (%.0f%% lower) over %d episodes; held-out NLL %.4f → %.4f; %d candidates scored.",
		res.Before.RewardMean, res.Before.RewardStd, res.After.RewardMean, res.After.RewardStd, drop, len(res.After.Rewards),
		res.Before.NLL, res.After.NLL, res.Evaluations))
	if st := res.Start; st != nil {
		how := "the original with its output layer's means refitted to the held-out data"
		if c.Start == "lure" {
			how = fmt.Sprintf("the original fine-tuned to believe %d lures (imagined transitions far from the held-out data, pulled toward its best state) at weight %g", res.Lures, res.LureWeight)
		}
		if len(res.BestPerIteration) == 0 {
			page.Paragraph(fmt.Sprintf("No CMA-ES iterations: the adversary is %s.", how))
		} else {
			page.Paragraph(fmt.Sprintf("The search started from %s: reward %.2f ± %.2f at held-out NLL %.4f.", how, st.RewardMean, st.RewardStd, st.NLL))
		}
	}
	page.Paragraph("The paper: reward 176 → 98 (−45%) at NLL −4.827 → −4.845.")
	for i, f := range figs {
		if err := f.Write(filepath.Join(dir, "figures")); err != nil {
			return err
		}
		page.Figure(f, caps[i])
	}
	cfg, _ := yaml.Marshal(c)
	page.Heading("Configuration")
	page.Pre(string(cfg))
	page.Provenance(dir)
	return page.Write(filepath.Join(dir, "report.html"))
}

func trajectory(name string, next []float32, od, d int) report.Series {
	s := report.Series{Name: name}
	for t := 0; t*od+d < len(next); t++ {
		s.X = append(s.X, float64(t+1))
		s.Y = append(s.Y, float64(next[t*od+d]))
	}
	return s
}

// abs is |x|, and 1 for 0 so that ratios stay finite.
func abs(x float64) float64 {
	switch {
	case x < 0:
		return -x
	case x == 0:
		return 1
	}
	return x
}
