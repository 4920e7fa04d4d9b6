// Package reproduce puts the objective-mismatch paper's findings beside this
// project's measurements of them: for each finding, the paper's number or
// claim, ours with its interval, the figure, the command and wall time that
// produced it, and a verdict. It reads finished study directories (and an
// adversarial search's output); it runs nothing.
package reproduce

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/study"
	"github.com/mismatch-rl/mismatch/study/attack"
)

// Sources are the directories a reproduction reads; an empty or missing
// one makes its findings "not run".
type Sources struct {
	CartpoleLikelihood string // study run --kind likelihood-reward on cartpole-swingup (with study metrics for the accuracy finding)
	CheetahLikelihood  string // the same on halfcheetah
	// CheetahFineLikelihood is the same on halfcheetah-fine, the
	// half-cheetah at half the timestep, whose expert cannot launch itself
	// through the contacts as the halfcheetah expert can.
	CheetahFineLikelihood string
	LossReward            string // study run --kind loss-reward
	Reweight              string // study run --kind reweight
	Attack                string // study attack --out
}

// Layout is where scripts/reproduce.sh puts each study under root.
func Layout(root string) Sources {
	j := func(name string) string { return filepath.Join(root, name) }
	return Sources{CartpoleLikelihood: j("likelihood-reward-cartpole"), CheetahLikelihood: j("likelihood-reward-halfcheetah"),
		CheetahFineLikelihood: j("likelihood-reward-halfcheetah-fine"),
		LossReward:            j("loss-reward-cartpole"), Reweight: j("reweight-cartpole"), Attack: j("attack-cartpole")}
}

// Verdicts.
const (
	Reproduced    = "reproduced"
	Partly        = "partly"
	NotReproduced = "not reproduced"
	NotRun        = "not run"
)

// Finding is one of the paper's results set beside ours.
type Finding struct {
	Name    string
	Paper   string // the paper's number or claim
	Ours    string // our measurement, with its interval
	Verdict string
	Why     string // how the verdict follows from the numbers
	Dir     string // the directory the measurement comes from
	Command string // the command that made it (from its provenance)
	Wall    string // its wall time and machine
	Figures []report.Figure
}

// Assemble reads every source and returns the findings in the paper's
// order. A source that is present but unreadable is an error; one that is
// absent gives "not run" findings.
func Assemble(src Sources) ([]Finding, error) {
	var out []Finding
	for _, lr := range []struct {
		dir, task string
		kinds     []string
	}{
		{src.CartpoleLikelihood, "cartpole-swingup", []string{"expert", "on-policy", "grid"}},
		{src.CheetahLikelihood, "halfcheetah", []string{"expert", "on-policy", "uniform"}},
		{src.CheetahFineLikelihood, "halfcheetah-fine", []string{"expert", "on-policy", "uniform"}},
	} {
		fs, err := likelihood(lr.dir, lr.task, lr.kinds)
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	for _, one := range []struct {
		f   func(string) (Finding, error)
		dir string
	}{{lossReward, src.LossReward}, {adversary, src.Attack}, {accuracy, src.CartpoleLikelihood}, {reweight, src.Reweight}} {
		fd, err := one.f(one.dir)
		if err != nil {
			return nil, err
		}
		out = append(out, fd)
	}
	return out, nil
}

// present says whether dir holds results, and if not, why: not given,
// not there, or not finished (a long study is reproduced in parts).
func present(dir, file string) (bool, string) {
	switch _, err := os.Stat(dir); {
	case dir == "":
		return false, "no directory given"
	case err != nil:
		return false, fmt.Sprintf("%s does not exist", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
		return false, fmt.Sprintf("%s holds no %s yet (unfinished, or another kind of result)", dir, file)
	}
	return true, ""
}

// origin fills a finding's command, wall time and machine from dir's
// provenance: the first command, the sum of every invocation's wall time.
func origin(f *Finding, dir string) {
	f.Dir = dir
	rs, err := provenance.Read(dir)
	if err != nil || len(rs) == 0 {
		f.Command, f.Wall = "unknown", "unknown"
		return
	}
	var wall float64
	killed := 0
	for _, r := range rs {
		wall += r.WallSec
		if r.Status == "running" {
			// Never stamped: killed, its time known only up to its last
			// periodic save (or not at all, before those existed).
			killed++
		}
	}
	f.Command = strings.Join(rs[0].Command, " ")
	f.Wall = fmt.Sprintf("%s over %d invocation(s), %s, %d cores", time.Duration(wall*float64(time.Second)).Round(time.Second), len(rs), rs[len(rs)-1].CPU, rs[len(rs)-1].Cores)
	if killed > 0 {
		f.Wall = fmt.Sprintf("at least %s (%d killed before recording its end)", f.Wall, killed)
	}
}

// figures reads the named figures that dir/figures holds (PNG and SVG).
func figures(dir string, names ...string) []report.Figure {
	var out []report.Figure
	for _, n := range names {
		png, err1 := os.ReadFile(filepath.Join(dir, "figures", n+".png"))
		svg, err2 := os.ReadFile(filepath.Join(dir, "figures", n+".svg"))
		if err1 == nil && err2 == nil {
			out = append(out, report.Figure{Name: n, PNG: png, SVG: svg})
		}
	}
	return out
}

// finished reads the study in dir for f when it holds file (else it sets
// f.Why and returns nil), and fills f's origin and the named figures.
func finished(f *Finding, dir, file string, figs ...string) (*study.Results, error) {
	if ok, why := present(dir, file); !ok {
		f.Why = why
		return nil, nil
	}
	res, err := study.Analyse(dir)
	if err != nil {
		return nil, fmt.Errorf("reproduce: %s: %w", dir, err)
	}
	origin(f, dir)
	f.Figures = figures(dir, figs...)
	return res, nil
}

// byMajority is the verdict when count of n cases show the paper's
// effect: reproduced for most, partly for some, not for none.
func byMajority(count, n int) string {
	switch {
	case n > 0 && 2*count > n:
		return Reproduced
	case count > 0:
		return Partly
	}
	return NotReproduced
}

// correlationVerdict compares the paper's ρ with our estimate and its
// interval: reproduced when the interval holds the paper's value; partly
// when it does not but the estimate is within 0.25 of it; otherwise not.
func correlationVerdict(paper float64, c study.Correlation) (string, string) {
	if !c.Pearson.Defined {
		return NotReproduced, "our correlation is undefined (constant values or fewer than three models)"
	}
	if !c.Pearson.HasCI {
		return Partly, "no interval to judge by"
	}
	iv := c.Pearson.Interval
	switch {
	case iv.Low <= paper && paper <= iv.High:
		return Reproduced, fmt.Sprintf("the paper's %.2f lies in our interval", paper)
	case math.Abs(c.Pearson.Value-paper) <= 0.25:
		return Partly, fmt.Sprintf("the paper's %.2f lies outside our interval, within 0.25 of our estimate", paper)
	}
	return NotReproduced, fmt.Sprintf("the paper's %.2f lies outside our interval and more than 0.25 from our estimate", paper)
}

func likelihood(dir, task string, kinds []string) ([]Finding, error) {
	ok, why := present(dir, study.CorrelationFile)
	var res *study.Results
	var err error
	if ok {
		if res, err = study.Analyse(dir); err != nil {
			return nil, fmt.Errorf("reproduce: %s: %w", dir, err)
		}
		if res.Spec.Task != task || res.Spec.Kind != study.LikelihoodReward {
			return nil, fmt.Errorf("reproduce: %s is a %s study on %s, want likelihood-reward on %s", dir, res.Spec.Kind, res.Spec.Task, task)
		}
	}
	var out []Finding
	for _, kind := range kinds {
		paper, _ := study.PaperCorrelation(task, kind)
		f := Finding{Name: fmt.Sprintf("Likelihood vs reward, %s, %s data", task, kind),
			Paper: fmt.Sprintf("Pearson ρ = %.2f", paper), Verdict: NotRun, Why: why}
		if res == nil {
			out = append(out, f)
			continue
		}
		name := ""
		for _, d := range res.Spec.Datasets {
			if d.Kind == kind {
				name = d.Name
				break
			}
		}
		origin(&f, dir)
		for _, c := range res.Correlations {
			if c.Dataset != name || c.Group != "all" {
				continue
			}
			f.Ours = fmt.Sprintf("ρ = %s, 95%% interval [%.2f, %.2f] (Spearman %s [%.2f, %.2f]), %d models × %d episodes", study.FormatStat(c.Pearson),
				c.Pearson.Interval.Low, c.Pearson.Interval.High, study.FormatStat(c.Spearman), c.Spearman.Interval.Low, c.Spearman.Interval.High,
				c.N, res.Spec.Evaluation.Episodes)
			f.Verdict, f.Why = correlationVerdict(paper, c)
			f.Figures = figures(dir, "likelihood-reward-"+name)
		}
		if f.Ours == "" {
			f.Verdict, f.Why = NotRun, fmt.Sprintf("the study has no %s dataset", kind)
		}
		out = append(out, f)
	}
	return out, nil
}

func lossReward(dir string) (Finding, error) {
	f := Finding{Name: "Loss vs reward over training epochs", Verdict: NotRun,
		Paper: "the epoch of best reward and the epoch of best validation loss differ; the loss goes on falling after the reward stops rising"}
	res, err := finished(&f, dir, study.EpochsFile, "reward-per-epoch", "loss-per-epoch")
	if res != nil {
		judgeEpochs(&f, res)
	}
	return f, err
}

// judgeEpochs sets a loss-vs-reward finding's measurement and verdict.
func judgeEpochs(f *Finding, res *study.Results) {
	// Every dataset the model is not trained on stands for a validation
	// set. A seed counts on a dataset when the checkpoint a stop at that
	// dataset's lowest NLL keeps earns less than the best checkpoint by
	// more than two standard errors of the best's episodes (noise alone
	// would make the two epochs differ). The verdict follows the dataset
	// on which most seeds count, and every dataset's count is given.
	sums := res.Epochs()
	var held []string
	for _, d := range res.Datasets {
		if d != res.Spec.Population.Dataset {
			held = append(held, d)
		}
	}
	if len(held) == 0 {
		held = res.Datasets
	}
	count := map[string]int{}
	var parts []string
	for _, e := range sums {
		se := math.NaN()
		for i, m := range res.Members {
			if m.Seed == e.Seed && m.Epoch == e.BestEpoch {
				se = res.Cells[i].RewardStd / math.Sqrt(float64(max(len(res.Cells[i].Rewards), 1)))
			}
		}
		part := fmt.Sprintf("seed %d: best reward %.1f at epoch %d", e.Seed, e.BestReward, e.BestEpoch)
		for _, d := range held {
			lowE, ok := e.LowestNLLEpoch[d]
			if !ok {
				continue
			}
			lowR := e.RewardAtLowest[d]
			if e.BestReward-lowR > 2*se {
				count[d]++
			}
			part += fmt.Sprintf("; lowest %s NLL at epoch %d, reward %.1f", d, lowE, lowR)
		}
		parts = append(parts, part)
	}
	f.Ours = strings.Join(parts, " | ")
	most, on := 0, ""
	var counts []string
	for _, d := range held {
		counts = append(counts, fmt.Sprintf("%s %d of %d", d, count[d], len(sums)))
		if count[d] > most {
			most, on = count[d], d
		}
	}
	f.Verdict = byMajority(most, len(sums))
	f.Why = fmt.Sprintf("seeds whose checkpoint of lowest NLL earns less than the best by more than two standard errors of the best's episodes, per held-out dataset: %s", strings.Join(counts, ", "))
	if on != "" {
		f.Why += fmt.Sprintf(" (the verdict follows %s)", on)
	}
}

func adversary(dir string) (Finding, error) {
	f := Finding{Name: "Adversarial model (CMA-ES on the last layer)", Verdict: NotRun,
		Paper: "reward 176 → 98 (−45%) with held-out NLL −4.827 → −4.845 (no worse)"}
	if ok, why := present(dir, attack.File); !ok {
		f.Why = why
		return f, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, attack.File))
	if err != nil {
		return f, err
	}
	var r struct {
		Before, After attack.Score
		Start         *attack.Score
		Evaluations   int
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return f, fmt.Errorf("reproduce: %s: %w", filepath.Join(dir, attack.File), err)
	}
	origin(&f, dir)
	f.Figures = figures(dir, "attack-convergence", "trajectory-0")
	drop := 1 - r.After.RewardMean/r.Before.RewardMean
	f.Ours = fmt.Sprintf("reward %.1f ± %.1f → %.1f ± %.1f (%+.0f%%), held-out NLL %.4f → %.4f, %d CMA-ES evaluations",
		r.Before.RewardMean, r.Before.RewardStd, r.After.RewardMean, r.After.RewardStd, -100*drop, r.Before.NLL, r.After.NLL, r.Evaluations)
	if r.Start != nil {
		f.Ours += fmt.Sprintf("; the starting model alone: reward %.1f", r.Start.RewardMean)
	}
	noWorse := r.After.NLL <= r.Before.NLL
	switch {
	case noWorse && drop >= 0.3:
		f.Verdict, f.Why = Reproduced, "the reward fell by 30% or more with a held-out NLL no worse"
	case noWorse && drop > 0:
		f.Verdict, f.Why = Partly, "the reward fell, by less than 30%, with a held-out NLL no worse"
	default:
		f.Verdict, f.Why = NotReproduced, "no lower reward at a held-out NLL no worse"
	}
	return f, nil
}

func accuracy(dir string) (Finding, error) {
	f := Finding{Name: "Where good models are accurate", Verdict: NotRun,
		Paper: "models that control well are accurate near the expert's trajectory, not necessarily elsewhere"}
	if ok, why := present(dir, study.AccuracyFile); !ok {
		f.Why = why + "; mismatch study metrics writes it"
		return f, nil
	}
	rows, err := readCSV(filepath.Join(dir, study.AccuracyFile))
	if err != nil {
		return f, err
	}
	origin(&f, dir)
	f.Figures = figures(dir, "accuracy-by-distance")
	// Per dataset: the ratio of the bottom quartile's error to the top's
	// in the nearest bin and in the farthest.
	type ends struct{ near, far float64 }
	ratio := map[string]*ends{}
	var order []string
	for _, r := range rows {
		if len(r) < 7 { // dataset, bin, low, high, transitions, top, bottom
			continue
		}
		top, err1 := strconv.ParseFloat(r[5], 64)
		bottom, err2 := strconv.ParseFloat(r[6], 64)
		if err1 != nil || err2 != nil || top <= 0 {
			continue
		}
		// Rows come in bin order, nearest first.
		if ratio[r[0]] == nil {
			ratio[r[0]], order = &ends{bottom / top, math.NaN()}, append(order, r[0])
		}
		ratio[r[0]].far = bottom / top
	}
	var parts []string
	better, narrows := 0, 0
	for _, d := range order {
		e := ratio[d]
		parts = append(parts, fmt.Sprintf("%s: the worst quarter's one-step error is %.2g× the best quarter's nearest the expert, %.2g× farthest", d, e.near, e.far))
		if e.near > 1 {
			better++
			if e.far < e.near {
				narrows++
			}
		}
	}
	f.Ours = strings.Join(parts, "; ")
	switch {
	case len(order) == 0:
		f.Verdict, f.Why = NotRun, "accuracy.csv holds no bins"
	case narrows == len(order):
		f.Verdict, f.Why = Reproduced, "on every dataset the best controllers are the more accurate near the expert, and the gap narrows with distance"
	case better > 0:
		f.Verdict, f.Why = Partly, fmt.Sprintf("the best controllers are the more accurate near the expert on %d of %d datasets; the gap narrows with distance on %d", better, len(order), narrows)
	default:
		f.Verdict, f.Why = NotReproduced, "the best controllers are not the more accurate near the expert"
	}
	return f, nil
}

func reweight(dir string) (Finding, error) {
	f := Finding{Name: "Re-weighted training", Verdict: NotRun,
		Paper: "weighting each tuple by its distance to the expert trajectory reaches moderate reward with far fewer data points (higher variance at large sizes)"}
	res, err := finished(&f, dir, study.ReweightFile, "reweight-reward-unweighted", "reweight-reward-weighted")
	if res == nil {
		return f, err
	}
	g := res.Grid()
	var parts []string
	for bi, b := range g.Bounds {
		if !math.IsNaN(g.Diff[bi][0]) {
			iv := g.DiffInterval[bi][0]
			parts = append(parts, fmt.Sprintf("ε = %g: %+.1f [%.1f, %.1f] (%d seeds)", b, g.Diff[bi][0], iv.Low, iv.High, g.Pairs[bi][0]))
		}
	}
	n, helps, hurts := g.Signs(0)
	f.Ours = fmt.Sprintf("weighted − unweighted reward at %d tuples: %s", g.Sizes[0], strings.Join(parts, "; "))
	f.Verdict = byMajority(helps, n)
	f.Why = fmt.Sprintf("at the smallest size the interval lies above zero for %d of %d bounds and below for %d", helps, n, hurts)
	return f, nil
}

func readCSV(path string) ([][]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("reproduce: %s: %w", path, err)
	}
	if len(rows) > 0 {
		rows = rows[1:]
	}
	return rows, nil
}

// WritePage writes the findings as one self-contained HTML page.
func WritePage(path string, fs []Finding) error {
	p := &report.Page{Title: "Objective mismatch: the paper's findings reproduced"}
	p.Paragraph("Each finding of Lambert, Amos, Yadan and Calandra, Objective Mismatch in Model-based Reinforcement Learning (L4DC 2020), beside this project's measurement of it. Verdicts: a correlation is reproduced when our 95% interval holds the paper's value, partly when our estimate is within 0.25 of it; the other verdicts say their rule beside them. The paper reports Pearson's ρ, which a few models of extreme likelihood can set; Spearman's rank correlation is given beside it.")
	p.Table([]string{"finding", "paper", "ours", "verdict"}, summaryRows(fs))
	for _, f := range fs {
		p.Heading(f.Name)
		p.Table([]string{"", ""}, detailRows(f))
		for _, fig := range f.Figures {
			p.Figure(fig, f.Name)
		}
	}
	return p.Write(path)
}

func summaryRows(fs []Finding) [][]string {
	var rows [][]string
	for _, f := range fs {
		rows = append(rows, []string{f.Name, f.Paper, dash(f.Ours), f.Verdict})
	}
	return rows
}

func detailRows(f Finding) [][]string {
	return [][]string{{"paper", f.Paper}, {"ours", dash(f.Ours)}, {"verdict", f.Verdict}, {"why", dash(f.Why)},
		{"directory", dash(f.Dir)}, {"command", dash(f.Command)}, {"wall time and machine", dash(f.Wall)}}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// WriteMarkdown writes the findings as REPRODUCTION.md's body: the
// summary table, then each finding's details.
func WriteMarkdown(w io.Writer, fs []Finding) error {
	cell := func(s string) string { return strings.ReplaceAll(dash(s), "|", "\\|") }
	var b strings.Builder
	b.WriteString("# Objective mismatch: the paper's findings reproduced\n\n")
	b.WriteString("Written by `mismatch reproduce` (`scripts/reproduce.sh` runs the studies); each finding of the paper beside our measurement, with the rule of its verdict. A correlation is reproduced when our 95% interval holds the paper's value, partly when our estimate is within 0.25 of it; the paper reports Pearson's ρ, which a few models of extreme likelihood can set, so Spearman's is given beside it.\n\n")
	b.WriteString("| finding | paper | ours | verdict |\n|---|---|---|---|\n")
	for _, f := range fs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(f.Name), cell(f.Paper), cell(f.Ours), cell(f.Verdict))
	}
	for _, f := range fs {
		fmt.Fprintf(&b, "\n## %s\n\n", f.Name)
		for _, r := range detailRows(f) {
			fmt.Fprintf(&b, "- **%s**: %s\n", r[0], r[1])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
