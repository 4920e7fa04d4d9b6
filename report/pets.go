package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/pets"
)

// RewardPlot is the reward of every trial of a PETS run.
func RewardPlot(rows []pets.Trial) (Figure, error) {
	var mpc, random Series
	mpc.Name, random.Name = "MPC trials", "random-action trials"
	mpc.Points, random.Points = true, true
	for _, r := range rows {
		s := &mpc
		if r.Kind == "random" {
			s = &random
		}
		s.X = append(s.X, float64(r.Trial))
		s.Y = append(s.Y, r.Reward)
	}
	return LinePlot("reward", "Episode reward per trial", "trial", "reward", []Series{mpc, random})
}

// PETSRun writes a PETS run directory's figures and report.html from its
// config and trials table.
func PETSRun(dir string) error {
	f, err := os.Open(filepath.Join(dir, pets.TrialsFile))
	if err != nil {
		return err
	}
	rows, err := pets.ReadTrials(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, pets.TrialsFile), err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, pets.ConfigFile))
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
	var svg bytes.Buffer
	WriteSVGInline(&svg, fig.SVG)
	best := ""
	var bestR float64
	for _, r := range rows {
		if r.Kind == "mpc" && (best == "" || r.Reward > bestR) {
			best, bestR = strconv.Itoa(r.Trial), r.Reward
		}
	}
	page := petsPage{Dir: filepath.Base(dir), Config: string(cfg), Rows: rows, Figure: template.HTML(svg.String()),
		PNG: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(fig.PNG)), Best: best, BestReward: fmtFloat(bestR)}
	var out bytes.Buffer
	if err := petsTemplate.Execute(&out, page); err != nil {
		return err
	}
	return safefile.WriteBytes(filepath.Join(dir, "report.html"), out.Bytes())
}

type petsPage struct {
	Dir, Config      string
	Rows             []pets.Trial
	Figure           template.HTML
	PNG              template.URL
	Best, BestReward string
}

var petsTemplate = template.Must(template.New("pets").Funcs(template.FuncMap{"f": fmtFloat}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>PETS run {{.Dir}}</title>
<style>` + css + `</style></head><body>
<h1>PETS run <code>{{.Dir}}</code></h1>
{{if .Best}}<p>Best trial: {{.Best}}, reward {{.BestReward}}.</p>{{end}}
<figure>{{.Figure}}<figcaption>Reward of each trial (<a download="reward.png" href="{{.PNG}}">PNG</a>).</figcaption></figure>
<h2>Trials</h2>
<table><tr><th>trial</th><th>kind</th><th>reward</th><th>steps</th><th>transitions</th><th>epochs</th><th>train loss</th><th>held-out NLL</th><th>train s</th><th>plan ms/step</th><th>model</th></tr>
{{range .Rows}}<tr><td>{{.Trial}}</td><td>{{.Kind}}</td><td>{{f .Reward}}</td><td>{{.Steps}}</td><td>{{.Transitions}}</td><td>{{.Epochs}}</td><td>{{f .TrainLoss}}</td><td>{{f .HoldOutNLL}}</td><td>{{f .TrainSec}}</td><td>{{f .StepMillis}}</td><td><code>{{.Model}}</code></td></tr>
{{end}}</table>
<h2>Configuration</h2>
<pre>{{.Config}}</pre>
</body></html>
`))

const css = `body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;overflow:auto}figure{margin:1em 0}
figure svg{max-width:100%;height:auto}figcaption{font-size:90%;color:#555}`
