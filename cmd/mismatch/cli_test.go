package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/internal/provenance"
)

// TestCommandsExplainThemselves: commands missing their argument print
// their usage and exit 2; the version, the task list and pets --help say
// what a user needs to know.
func TestCommandsExplainThemselves(t *testing.T) {
	for _, args := range [][]string{{"report"}, {"study", "report"}, {"study", "merge"}, {"report", "a", "b"}} {
		out, err := command(args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "Usage:") || !strings.Contains(string(out), "DIR") {
			t.Errorf("%v: exit %v, output\n%s\nwant usage naming DIR and exit 2", args, err, out)
		}
	}
	out, err := command("--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revision") || !strings.Contains(string(out), runtime.Version()) {
		t.Errorf("--version: %v %q", err, out)
	}
	out, err = command("tasks").CombinedOutput()
	if err != nil {
		t.Fatalf("tasks: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		mujoco := strings.Contains(l, "MuJoCo")
		switch f[0] {
		case "cartpole-swingup", "halfcheetah", "reacher", "pusher":
			if !mujoco {
				t.Errorf("tasks: %q does not say it needs MuJoCo", l)
			}
		case "pointmass", "cartpole", "pendulum":
			if mujoco || !strings.Contains(l, "pure Go") {
				t.Errorf("tasks: %q", l)
			}
		}
	}
	// pets --help says how to list every key, and that command lists them.
	out, _ = command("pets", "--task", "pointmass", "--help").CombinedOutput()
	for _, s := range []string{"mismatch pets --print-config", "key=value"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("pets --help does not mention %s", s)
		}
	}
	out, err = command("pets", "--task", "pointmass", "--print-config").Output()
	var cfg struct{ Model, Train, Planner map[string]any }
	if err != nil || yaml.Unmarshal(out, &cfg) != nil || cfg.Train["epochs"] == nil || cfg.Planner["population"] == nil || cfg.Model["hidden"] == nil {
		t.Errorf("pets --print-config: %v\n%s", err, out)
	}
}

// TestPrintSpecLeavesOutUnusedBlocks: a dataset's planner is printed only
// for the expert dataset that plans, PETS settings only for a population
// of PETS runs.
func TestPrintSpecLeavesOutUnusedBlocks(t *testing.T) {
	for _, kind := range []string{"likelihood-reward", "reweight"} {
		out, err := command("study", "run", "--kind", kind, "--preset", "fast", "--print-spec").Output()
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var s struct {
			Datasets []map[string]any `yaml:"datasets"`
			Pop      map[string]any   `yaml:"population"`
		}
		if err := yaml.Unmarshal(out, &s); err != nil {
			t.Fatalf("%s: printed spec does not parse: %v", kind, err)
		}
		if len(s.Datasets) < 2 {
			t.Fatalf("%s: %d datasets", kind, len(s.Datasets))
		}
		for _, d := range s.Datasets {
			_, has := d["planner"]
			if has != (d["kind"] == "expert") {
				t.Errorf("%s: dataset %v of kind %v prints a planner: %v", kind, d["name"], d["kind"], has)
			}
		}
		if _, has := s.Pop["pets"]; has != (s.Pop["kind"] == "pets") {
			t.Errorf("%s: population of kind %v prints PETS settings: %v", kind, s.Pop["kind"], has)
		}
	}
}

// TestRunKeepsProvenance: a run directory records the invocation that
// made it, finished, and its report shows it.
func TestRunKeepsProvenance(t *testing.T) {
	dir := pointMassRun(t)
	rs, err := provenance.Read(dir)
	if err != nil || len(rs) == 0 {
		t.Fatalf("provenance: %v, %d records", err, len(rs))
	}
	r := rs[0]
	if r.Status != "done" || r.WallSec <= 0 || r.Cores != runtime.NumCPU() || r.CPU == "" || r.BLAS == "" || r.Precision != "fp32" ||
		!strings.Contains(strings.Join(r.Command, " "), "pets --task pointmass") {
		t.Fatalf("record %+v", r)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "Provenance") || !strings.Contains(string(html), r.BLAS) {
		t.Errorf("report.html does not show the provenance")
	}
}
