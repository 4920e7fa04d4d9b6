package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A finished PETS run on the point mass, made once for the cases that need
// a run directory, a model or data.
var fixtureRun string

func pointMassRun(t *testing.T) string {
	t.Helper()
	if fixtureRun != "" {
		return fixtureRun
	}
	dir, err := os.MkdirTemp("", "mismatch-run-")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "run")
	if out, err := command("pets", "--task", "pointmass", "--preset", "fast", "trials=1", "train.epochs=2", "model.hidden=[8]", "--out", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fixtureRun = dir
	return dir
}

// cartpoleData writes a small .npz of cartpole-swingup transitions (4/1
// wide, unlike the point mass's 2/1).
func cartpoleData(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "cartpole")
	if b, err := command("pets", "--task", "cartpole-swingup", "--preset", "fast", "trials=0", "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return filepath.Join(out, "data.npz")
}

// lyingNPZ copies an .npz, replacing obs by an array whose header declares
// 5·10⁸ × 2 floats that the file does not hold.
func lyingNPZ(t *testing.T, from, to string) {
	t.Helper()
	zr, err := zip.OpenReader(from)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name == "obs.npy" {
			continue
		}
		rc, _ := f.Open()
		w, _ := zw.Create(f.Name)
		io.Copy(w, rc)
		rc.Close()
	}
	h := "{'descr': '<f4', 'fortran_order': False, 'shape': (500000000, 2), }     \n"
	head := append(append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8)), h...)
	var deflated bytes.Buffer
	fw, _ := flate.NewWriter(&deflated, flate.BestSpeed)
	fw.Write(head)
	noise := make([]byte, 4_000_000) // incompressible: the entry must be large enough to claim 4 GB
	src := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(src.Uint32())
	}
	fw.Write(noise)
	fw.Close()
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "obs.npy", Method: zip.Deflate, CompressedSize64: uint64(deflated.Len()),
		UncompressedSize64: uint64(len(head)) + 500000000*2*4})
	w.Write(deflated.Bytes())
	zw.Close()
	os.WriteFile(to, buf.Bytes(), 0o644)
}

// TestBadInputIsRefusedBeforeAnyWork runs the command on each kind of bad
// input the robustness review found: each must exit with status 2 and a
// message naming the field or file, without creating or changing the
// output directory.
func TestBadInputIsRefusedBeforeAnyWork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	run := pointMassRun(t)
	model := filepath.Join(run, "models", "trial_001.safetensors")
	runData := filepath.Join(run, "data.npz")
	tmp := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(tmp, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	cartData := cartpoleData(t, tmp)
	lying := filepath.Join(tmp, "lying.npz")
	lyingNPZ(t, runData, lying)
	userDir := filepath.Join(tmp, "user")
	os.MkdirAll(userDir, 0o755)
	os.WriteFile(filepath.Join(userDir, "report.html"), []byte("mine"), 0o644)
	os.Symlink(run, filepath.Join(tmp, "alias"))
	escaped := filepath.Join(tmp, "escaped")
	copyDir(t, run, escaped)
	trials, _ := os.ReadFile(filepath.Join(escaped, "trials.csv"))
	os.WriteFile(filepath.Join(escaped, "trials.csv"), bytes.ReplaceAll(trials, []byte("models/trial_001"), []byte("../../etc/trial_001")), 0o644)

	cat := func(a []string, b ...string) []string { return append(append([]string{}, a...), b...) }
	pm := []string{"pets", "--task", "pointmass", "--preset", "fast"}
	attack := func(data string, more ...string) []string {
		return cat([]string{"study", "attack", "--model", model, "--data", data}, more...)
	}
	const small = "model: {class: P, members: 1, hidden: [8]}, train: {batch_size: 32, lr: 0.001}"
	study := func(spec string) []string {
		return []string{"study", "run", "--task", "pointmass", "--spec", file(fmt.Sprintf("spec%d.yaml", len(spec)), spec)}
	}
	cases := []struct {
		name string
		args []string
		want string // in the message
		out  string // an existing --out to leave as it is (default: a new one that must not appear)
	}{
		// Numbers YAML would truncate.
		{"fractional seed", cat(pm, "seed=2.9"), `seed: "2.9" is not an integer`, ""},
		{"fractional population", cat(pm, "planner.population=150.7"), `planner.population: "150.7" is not an integer`, ""},
		{"fractional trials", cat(pm, "trials=2.5"), `trials: "2.5" is not an integer`, ""},
		{"fraction in a file", cat(pm, "--config", file("frac.yaml", "seed: 2\nplanner:\n  population: 150.7\n")), `planner.population: "150.7" is not an integer (line 3)`, ""},
		// Model sizes that disagree with the class.
		{"no members", cat(pm, "model.members=0"), "model.members: is 0", ""},
		{"negative members", cat(pm, "model.members=-3"), "model.members: is -3", ""},
		{"PE of one", cat(pm, "model.members=1"), "model.members: is 1", ""},
		{"P of seven", cat(pm, "model.class=P", "model.members=7"), "model.members: is 7, but class P is a single network", ""},
		{"two tasks", []string{"pets", "--task", "pendulum", "task=halfcheetah"}, `two tasks: --task names "pendulum", task=halfcheetah names "halfcheetah"`, ""},
		// Planner settings, checked at load.
		{"alpha NaN", cat(pm, "planner.alpha=.nan"), "planner.alpha: is NaN", ""},
		{"alpha Inf", cat(pm, "planner.alpha=.inf"), "planner.alpha: is +Inf", ""},
		{"alpha 2", cat(pm, "planner.alpha=2"), "planner.alpha: is 2", ""},
		{"negative variance", cat(pm, "planner.min_variance=-1"), "planner.min_variance: is -1", ""},
		{"MPPI sigma", cat(pm, "planner.optimizer=mppi", "planner.sigma=0"), "planner.sigma: is 0", ""},
		{"iCEM decay", cat(pm, "planner.optimizer=icem", "planner.pop_decay=0.5"), "planner.pop_decay: is 0.5", ""},
		{"every bad field", cat(pm, "planner.optimizer=icem", "planner.noise_beta=9", "planner.keep_elites=2", "seed=1.5"), "seed: \"1.5\" is not an integer\nplanner.noise_beta: is 9, want it in [0, 4]\nplanner.keep_elites: is 2", ""},
		{"study planner", study("evaluation:\n  planner: {alpha: 3}\n"), "evaluation.planner.alpha: is 3", ""},
		{"attack planner", attack(runData, "search.planner.alpha=3"), "search.planner.alpha: is 3", ""},
		// Settings that cannot fit in memory.
		{"huge population", cat(pm, "planner.population=100000000"), "planner.population × planner.particles × planner.horizon", ""},
		{"huge particles", cat(pm, "planner.particles=100000000"), "planner.population × planner.particles × planner.horizon", ""},
		{"huge horizon", cat(pm, "planner.horizon=1000000000"), "planner.population × planner.particles × planner.horizon", ""},
		{"huge ensemble", cat(pm, "model.members=100000"), "model.members × model.hidden", ""},
		{"huge layers", cat(pm, "model.hidden=[100000,100000]"), "model.members × model.hidden", ""},
		{"huge attack", attack(runData, "dims=100000000"), "dims² (CMA-ES's covariance", ""},
		{"huge dataset", study("datasets:\n  - {name: u, kind: uniform, samples: 2000000000}\npopulation: {kind: train, dataset: u, classes: [P], seeds: 1, budgets: [1], " + small + "}\n"), "datasets[0] (uniform)", ""},
		{"--max-memory", cat(pm, "--max-memory", "1K"), "--max-memory is 1.0 KiB", ""},
		{"lying npz", attack(lying), `array "action" has 100 rows, "obs" has 500000000`, ""},
		// Files and directories.
		{"user's directory", cat(pm, "--out", userDir), "not a directory this tool made", userDir},
		{"attack into user's directory", attack(runData, "--out", userDir), "not a directory this tool made", userDir},
		{"run listed twice", study(fmt.Sprintf("population: {kind: runs, dirs: [%s, %s]}\ndatasets:\n  - {name: g, kind: grid, points: 2}\n", run, filepath.Join(tmp, "alias"))), "is the run of population.dirs[0] again", ""},
		{"model outside its run", study(fmt.Sprintf("population: {kind: runs, dirs: [%s]}\ndatasets:\n  - {name: g, kind: grid, points: 2}\n", escaped)), "lies outside the run directory", ""},
		{"data of another task", attack(cartData), "--data " + cartData + " holds 4-wide observations and 1-wide actions; the model's task pointmass has 2 and 1", ""},
		{"expert of another task", attack(runData, "--expert", cartData), "--expert " + cartData + " holds 4-wide", ""},
		{"dataset file of another task", study(fmt.Sprintf("datasets:\n  - {name: f, kind: file, path: %s}\npopulation: {kind: train, dataset: f, classes: [P], seeds: 1, budgets: [1], "+small+"}\n", cartData)), "datasets[0].path: " + cartData + " holds 4-wide", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := c.out
			args := c.args
			if out == "" {
				out = filepath.Join(t.TempDir(), "out")
			}
			if !contains(args, "--out") {
				args = append(append([]string{}, args...), "--out", out)
			}
			before := snapshot(t, out)
			b, err := command(args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2\n%s", err, b)
			}
			if !strings.Contains(string(b), c.want) {
				t.Fatalf("message does not say %q:\n%s", c.want, b)
			}
			t.Logf("exit 2: %s", strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " | "))
			if after := snapshot(t, out); after != before {
				t.Fatalf("the output directory changed:\n%s\nbefore:\n%s", after, before)
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// snapshot lists a directory's files and contents ("" when it does not
// exist).
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		c := []byte{}
		if !info.IsDir() {
			c, _ = os.ReadFile(p)
		}
		fmt.Fprintf(&b, "%s %d %x\n", p, len(c), c[:min(len(c), 16)])
		return nil
	})
	return b.String()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
}

// TestEveryOptimizerRunsWithItsDefaults: one PETS trial from the command
// line with each optimiser, changing nothing but its name.
func TestEveryOptimizerRunsWithItsDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	for _, opt := range []string{"cem", "icem", "mppi", "random"} {
		t.Run(opt, func(t *testing.T) {
			dir := t.TempDir()
			out, err := command("pets", "--task", "pointmass", "--preset", "fast", "trials=1", "train.epochs=2", "model.hidden=[16]", "planner.population=40", "planner.elites=5", "planner.particles=2", "planner.optimizer="+opt, "--out", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(string(out), "done: 1 trials") {
				t.Fatalf("no trial finished:\n%s", out)
			}
		})
	}
}
