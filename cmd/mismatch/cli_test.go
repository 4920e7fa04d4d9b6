package main

import (
	"encoding/xml"
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
	for _, args := range [][]string{{"report"}, {"study", "report"}, {"study", "merge"}, {"study", "metrics"}, {"report", "a", "b"}} {
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
		if variant := strings.Contains(l, "a variant of halfcheetah"); variant != (f[0] == "halfcheetah-fine") {
			t.Errorf("tasks: %q says it is a variant of halfcheetah: %v", l, variant)
		}
		switch f[0] {
		case "cartpole-swingup", "halfcheetah", "halfcheetah-fine", "reacher", "pusher":
			if !mujoco {
				t.Errorf("tasks: %q does not say it needs MuJoCo", l)
			}
		case "pointmass", "cartpole", "pendulum":
			if mujoco || !strings.Contains(l, "pure Go") {
				t.Errorf("tasks: %q", l)
			}
		}
	}
	// A MuJoCo task's model, as MuJoCo reads it; none for a pure-Go task.
	out, err = command("tasks", "--mjcf", "pusher").Output()
	if err != nil || !strings.Contains(string(out), `<mujoco model="pusher">`) || xml.Unmarshal(out, new(struct{ XMLName xml.Name })) != nil {
		t.Errorf("tasks --mjcf pusher: %v\n%.200s", err, out)
	}
	out, err = command("tasks", "--mjcf", "pointmass").CombinedOutput()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "pure Go") {
		t.Errorf("tasks --mjcf pointmass: %v %s", err, out)
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

// TestParseShard: the shard count always comes from the flag, so that one
// array task resubmitted alone keeps its place; the index comes from the
// batch engine with auto/N.
func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		flag, slurmID, slurmCount, k8s string
		i, n                           int
		err                            string
	}{
		{"", "", "", "", 0, 1, ""},
		{"3/50", "", "", "", 3, 50, ""},
		{"auto/50", "7", "1", "", 7, 50, ""}, // resubmitted with --array=7: one task in the array
		{"auto/50", "", "", "12", 12, 50, ""},
		{"auto/5", "7", "8", "", 0, 0, "not an index"},
		{"auto/50", "", "", "", 0, 0, "neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX"},
		{"auto", "7", "8", "", 0, 0, "or auto/N"},
		{"auto/", "7", "8", "", 0, 0, "or auto/N"},
		{"3", "", "", "", 0, 0, "want i/N"},
		{"50/50", "", "", "", 0, 0, "not an index"},
		{"-1/4", "", "", "", 0, 0, "not an index"},
		{"1/0", "", "", "", 0, 0, "not an index"},
	} {
		t.Setenv("SLURM_ARRAY_TASK_ID", c.slurmID)
		t.Setenv("SLURM_ARRAY_TASK_COUNT", c.slurmCount)
		t.Setenv("JOB_COMPLETION_INDEX", c.k8s)
		i, n, err := parseShard(c.flag)
		if c.err != "" {
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &ue) {
				t.Errorf("%q: %d/%d %v, want a usage error with %q", c.flag, i, n, err, c.err)
			}
			continue
		}
		if err != nil || i != c.i || n != c.n {
			t.Errorf("%q (array task %q of %q, index %q): %d/%d %v, want %d/%d", c.flag, c.slurmID, c.slurmCount, c.k8s, i, n, err, c.i, c.n)
		}
	}
}

// TestCountRuns: what the cluster scripts shard first.
func TestCountRuns(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--preset", "fast"}, "3"},
		{[]string{"--preset", "fast", "population.runs=7"}, "7"},
		{[]string{"--preset", "paper"}, "50"},
		{[]string{"--preset", "fast", "--kind", "loss-reward"}, "0"},
		{[]string{"--preset", "fast", "--kind", "reweight"}, "0"},
	} {
		out, err := command(append([]string{"study", "prepare", "--count-runs", "--out", filepath.Join(t.TempDir(), "s")}, c.args...)...).Output()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("%v: %q %v, want %s", c.args, out, err, c.want)
		}
	}
	if out, err := command("study", "prepare", "--count-runs", "population.runs=-1").CombinedOutput(); err == nil || !strings.Contains(string(out), "population.runs") {
		t.Errorf("bad runs: %v %s", err, out)
	}
}

// TestReproduceCommand: reproduce needs a directory of studies; over an
// empty one it lists every finding as not run and writes the page and the
// Markdown.
func TestReproduceCommand(t *testing.T) {
	out, err := command("reproduce").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "ROOT") {
		t.Errorf("reproduce with no directory: %v\n%s", err, out)
	}
	missing := filepath.Join(t.TempDir(), "nothere")
	out, err = command("reproduce", missing).CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "not a directory of studies") {
		t.Errorf("reproduce %s: %v\n%s", missing, err, out)
	}
	root := t.TempDir()
	md := filepath.Join(t.TempDir(), "REPRODUCTION.md")
	out, err = command("reproduce", root, "--markdown", md).CombinedOutput()
	if err != nil || strings.Count(string(out), "not run") != 13 {
		t.Fatalf("reproduce over an empty directory: %v\n%s", err, out)
	}
	for _, p := range []string{filepath.Join(root, "reproduction.html"), md} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
}
