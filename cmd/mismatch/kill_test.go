package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// TestMain lets the test binary run as the mismatch command in child
// processes, so that tests can kill it.
func TestMain(m *testing.M) {
	if os.Getenv("MISMATCH_AS_MAIN") == "1" {
		os.Args = append([]string{"mismatch"}, strings.Fields(os.Getenv("MISMATCH_ARGS"))...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	if fixtureRun != "" {
		os.RemoveAll(filepath.Dir(fixtureRun))
	}
	os.Exit(code)
}

func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MISMATCH_AS_MAIN=1", "MISMATCH_ARGS="+strings.Join(args, " "))
	return cmd
}

// killLoop starts the command and stops it with sig after a random delay
// under maxDelay, kills times over, starting it again after each; then it
// lets a run finish. It returns the number of signals that struck a
// running process (a run that finished before its signal counts none, and
// ends the loop). A process stopped by SIGTERM must exit with status 130
// within a second, having kept what it finished.
func killLoop(t *testing.T, seed uint64, maxDelay time.Duration, sig syscall.Signal, kills int, args ...string) int {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	struck := 0
	for attempt := 0; ; attempt++ {
		cmd := command(args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var timeout <-chan time.Time
		if attempt < kills {
			timeout = time.After(time.Duration(r.Int64N(int64(maxDelay))))
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run failed after %d signals: %v\n%s", struck, err, out.String())
			}
			return struck
		case <-timeout:
			t0 := time.Now()
			cmd.Process.Signal(sig)
			err := <-done
			struck++
			if sig == syscall.SIGKILL {
				continue
			}
			// A signal during the report's rendering waits for it
			// (over a second on a loaded machine).
			if took := time.Since(t0); took > 5*time.Second {
				t.Fatalf("%v took %s to stop the run\n%s", sig, took, out.String())
			}
			var ee *exec.ExitError
			if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 130 && !killedAtStart(ee, sig)) {
				t.Fatalf("stopped by %v: %v, want exit status 130\n%s", sig, err, out.String())
			}
		}
	}
}

// killedAtStart reports whether the process died of sig itself: a signal
// that arrives while the Go runtime starts, before the command installs
// its handler, takes its default action.
func killedAtStart(ee *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// sameDirs fails unless got holds the files want holds, with the same
// contents, timing fields aside (columns of CSV tables and the seconds of
// cells), leaving out lock files, the figures and pages made from the
// tables and the provenance list (one record per invocation, with its
// times); and no temporary file of an interrupted write is left in got.
func sameDirs(t *testing.T, want, got string) {
	t.Helper()
	timing := []string{"train_s", "plan_s", "plan_ms_per_step", "seconds"}
	list := func(root string) map[string]string {
		files := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			name := d.Name()
			switch {
			case safefile.IsTemp(name):
				t.Errorf("temporary file %s left in %s", rel, root)
			case strings.HasSuffix(name, ".lock") || name == provenance.File:
			default:
				files[rel] = p
			}
			return nil
		})
		return files
	}
	w, g := list(want), list(got)
	for rel := range w {
		if _, ok := g[rel]; !ok {
			t.Errorf("%s is missing", rel)
		}
	}
	for rel, p := range g {
		q, ok := w[rel]
		if !ok {
			t.Errorf("%s is extra", rel)
			continue
		}
		switch ext := filepath.Ext(rel); {
		case ext == ".html" || ext == ".png" || ext == ".svg":
		case ext == ".csv":
			if a, b := stable(t, q, timing...), stable(t, p, timing...); a != b {
				t.Errorf("%s differs:\n%s\nuninterrupted:\n%s", rel, b, a)
			}
		case strings.HasPrefix(rel, "cells"+string(filepath.Separator)):
			if a, b := withoutSeconds(t, q), withoutSeconds(t, p); a != b {
				t.Errorf("%s differs:\n%s\nuninterrupted:\n%s", rel, b, a)
			}
		default:
			a, _ := os.ReadFile(q)
			b, _ := os.ReadFile(p)
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs from the uninterrupted run's", rel)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func withoutSeconds(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	delete(m, "seconds")
	out, _ := json.Marshal(m)
	return string(out)
}

// stable drops the wall-time columns, the only ones that may differ.
func stable(t *testing.T, path string, drop ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Split(lines[0], ",")
	var keep []int
	for i, h := range head {
		if !slices.Contains(drop, h) {
			keep = append(keep, i)
		}
	}
	var out []string
	for _, l := range lines {
		f := strings.Split(l, ",")
		var k []string
		for _, i := range keep {
			if i < len(f) {
				k = append(k, f[i])
			}
		}
		out = append(out, strings.Join(k, ","))
	}
	return strings.Join(out, "\n")
}

// killRounds runs the command once to its end into a reference directory,
// then once per signal in sigs into a new directory, stopped by that signal
// kills times at random moments under the reference run's time divided by
// div (see killLoop), and checks that each directory ends as the
// reference and that each round struck a running process at least once
// (or it tested nothing; how many of its signals strike depends on the
// machine's load, and on how much shorter a resumed run is). It returns
// the signals that struck in each round, and the reference run's time.
func killRounds(t *testing.T, seed uint64, div time.Duration, kills int, sigs []syscall.Signal, args ...string) ([]int, time.Duration) {
	t.Helper()
	ref := t.TempDir()
	t0 := time.Now()
	if out, err := command(append(args, "--out", ref)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	full := time.Since(t0)
	struck := make([]int, len(sigs))
	for round, sig := range sigs {
		killed := t.TempDir()
		struck[round] = killLoop(t, seed+uint64(round), full/div, sig, kills, append(args, "--out", killed)...)
		if struck[round] == 0 {
			t.Fatalf("round %d: no %s struck a running process", round, sig)
		}
		sameDirs(t, ref, killed)
	}
	return struck, full
}

const petsKillArgs = "pets --task pointmass --preset fast trials=4 model.hidden=[16] train.epochs=8 planner.population=30 planner.particles=2 planner.horizon=8"

// TestKilledPETSRunResumesExactly stops a PETS run at random moments, with
// SIGKILL and with SIGTERM, and reruns it: the run directory ends as an
// uninterrupted run's.
func TestKilledPETSRunResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and reruns processes")
	}
	struck, full := killRounds(t, 10, 4, 8, []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL}, strings.Fields(petsKillArgs)...)
	t.Logf("%v signals in 3 rounds (an uninterrupted run takes %s)", struck, full.Round(time.Millisecond))
}

// TestKilledAttackResumesExactly does the same for the adversarial search,
// which keeps its scored candidates and final measurements in a journal.
func TestKilledAttackResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and reruns processes")
	}
	run := pointMassRun(t)
	args := []string{"study", "attack", "--model", filepath.Join(run, "models", "trial_001.safetensors"), "--data", filepath.Join(run, "data.npz"),
		"start=refit", "dims=4", "iterations=20", "population=8", "final.episodes=4"}
	for _, p := range []string{"search", "final"} {
		args = append(args, p+".planner.population=30", p+".planner.horizon=8", p+".planner.particles=2")
	}
	// Signals under half a run: a resumed run is shorter than the first.
	struck, full := killRounds(t, 30, 2, 6, []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM}, args...)
	t.Logf("%v signals in 2 rounds (an uninterrupted run takes %s)", struck, full.Round(time.Millisecond))
}

const killSpec = `task: pointmass
datasets:
  - {name: expert, kind: expert, episodes: 1, threshold: -30, planner: {optimizer: cem, horizon: 8, population: 30, elites: 5, iterations: 3, alpha: 0.1, particles: 1, propagation: ts-inf, replan_every: 1}}
  - {name: grid, kind: grid, points: 4}
population:
  runs: 2
  pets: {task: pointmass, random_trials: 1, trials: 3, model: {class: PE, members: 2, hidden: [16], activation: swish},
         train: {epochs: 8, batch_size: 32, lr: 0.003}, planner: {optimizer: cem, horizon: 8, population: 30, elites: 5, iterations: 3, alpha: 0.1, particles: 2, propagation: ts-inf, replan_every: 1}}
evaluation:
  episodes: 2
  planner: {optimizer: cem, horizon: 8, population: 30, elites: 5, iterations: 3, alpha: 0.1, particles: 2, propagation: ts-inf, replan_every: 1}
`

// TestKilledStudyResumesExactly does the same for a small study.
func TestKilledStudyResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and reruns processes")
	}
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(spec, []byte(killSpec), 0o644)
	args := []string{"study", "run", "--task", "pointmass", "--spec", spec, "--workers", "2"}
	struck, full := killRounds(t, 20, 4, 8, []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL}, args...)
	if total := struck[0] + struck[1] + struck[2]; total < 10 {
		t.Fatalf("only %d of the signals struck a running process", total)
	}
	t.Logf("%v signals in 3 rounds (an uninterrupted run takes %s)", struck, full.Round(time.Millisecond))
}

// TestSIGTERMStopsEveryPhase sends SIGTERM during each long phase — random
// data collection, training, planning, a study's cells — of runs whose
// phases take many seconds, once the log shows the phase has begun: each
// must exit within a second with status 130.
func TestSIGTERMStopsEveryPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(spec, []byte(strings.ReplaceAll(killSpec, "evaluation:\n  episodes: 2", "evaluation:\n  episodes: 50")), 0o644)
	for _, tc := range []struct {
		phase string
		args  string
		after string // the log line that shows the phase has begun
		until string // and the one that shows it has ended
		wait  time.Duration
	}{
		{"random collection", "pets --task cartpole-swingup --preset fast random_trials=100000", "PETS on", "training", 500 * time.Millisecond},
		{"training", "pets --task pointmass --preset fast train.epochs=1000000 train.patience=0 train.hold_out=0", "training", "trial 1/5: reward", 300 * time.Millisecond},
		{"planning", "pets --task pointmass --preset fast train.epochs=1 planner.population=20000 planner.particles=20 planner.elites=100", "training", "trial 1/5: reward", 800 * time.Millisecond},
		{"study cells", "study run --task pointmass --workers 2 --spec " + spec, "evaluating", "cell 2", 300 * time.Millisecond},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			dir := t.TempDir()
			cmd := command(append(strings.Fields(tc.args), "--out", dir)...)
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(out.String(), tc.after) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("no %q in the log after a minute:\n%s", tc.after, out.String())
				}
				select {
				case err := <-done:
					t.Fatalf("ended before the phase: %v\n%s", err, out.String())
				case <-time.After(20 * time.Millisecond):
				}
			}
			time.Sleep(tc.wait)
			t0 := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 10 s after SIGTERM\n%s", out.String())
			}
			took := time.Since(t0)
			if strings.Contains(out.String(), tc.until) {
				t.Fatalf("the phase had ended (%q) before SIGTERM:\n%s", tc.until, out.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("exit %v, want status 130\n%s", err, out.String())
			}
			// Stopping within the phase is checked above (its end is not
			// in the log); the time bound only catches a stop that waits
			// for something long, with room for a loaded machine.
			if took > 5*time.Second {
				t.Fatalf("took %s to stop\n%s", took, out.String())
			}
			t.Logf("stopped in %s", took.Round(time.Millisecond))
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecondProcessOnADirectoryIsRefused: a run holds its directory.
func TestSecondProcessOnADirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	args := []string{"pets", "--task", "pointmass", "--preset", "fast", "--out", dir}
	first := command(args...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { first.Process.Kill(); first.Wait() }()
	// Wait for the first to take its lock.
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, ".pets.lock")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	out, err := command(args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second process: %v\n%s", err, out)
	}
}

// TestShardProcesses: a study whose preparation runs in 2 processes and
// whose cells run in 3 concurrent processes, each finding its index as a
// Kubernetes Indexed Job gives it, merges into the table one process makes.
func TestShardProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(spec, []byte(`task: pointmass
datasets:
  - {name: grid, kind: grid, points: 3}
  - {name: on-policy, kind: on-policy}
population:
  runs: 3
  pets: {task: pointmass, random_trials: 1, trials: 2, model: {class: PE, members: 2, hidden: [16], activation: swish},
         train: {epochs: 5, batch_size: 32, lr: 0.003}, planner: {optimizer: cem, horizon: 6, population: 20, elites: 4, iterations: 2, alpha: 0.1, particles: 2, propagation: ts-inf, replan_every: 1}}
evaluation:
  episodes: 1
  planner: {optimizer: cem, horizon: 6, population: 20, elites: 4, iterations: 2, alpha: 0.1, particles: 2, propagation: ts-inf, replan_every: 1}
`), 0o644)
	base := []string{"--task", "pointmass", "--spec", spec}
	one, sharded := t.TempDir(), t.TempDir()
	if out, err := command(append([]string{"study", "run", "--out", one}, base...)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	} else if !regexp.MustCompile(`cell 1/6 \S+: reward .* in \d+s, ETA \d+`).Match(out) || !regexp.MustCompile(`cell 6/6 \S+: reward .* in \d+s\n`).Match(out) {
		t.Errorf("the cells' progress lines give no time left, or give one after the last:\n%s", out)
	}
	parallel := func(n int, args func(i int) []string) {
		var cmds []*exec.Cmd
		outs := make([]bytes.Buffer, n)
		for i := 0; i < n; i++ {
			c := command(args(i)...)
			c.Env = append(c.Env, "JOB_COMPLETION_INDEX="+strconv.Itoa(i))
			c.Stdout, c.Stderr = &outs[i], &outs[i]
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, c)
		}
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Fatalf("shard process %d: %v\n%s", i, err, outs[i].String())
			}
		}
	}
	parallel(2, func(int) []string {
		return append([]string{"study", "prepare", "--out", sharded, "--shard", "auto/2"}, base...)
	})
	if out, err := command(append([]string{"study", "prepare", "--out", sharded}, base...)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	parallel(3, func(int) []string {
		return []string{"study", "run", "--out", sharded, "--shard", "auto/3", "--workers", "1"}
	})
	if out, err := command("study", "merge", sharded).CombinedOutput(); err != nil {
		t.Fatalf("merge: %v\n%s", err, out)
	}
	for _, f := range []string{"table.csv", "correlations.csv"} {
		if got, want := stable(t, filepath.Join(sharded, f), "seconds"), stable(t, filepath.Join(one, f), "seconds"); got != want {
			t.Fatalf("%s from shards:\n%s\none process:\n%s", f, got, want)
		}
	}
	// A merge with a cell missing names it, its shard, and how to run that
	// shard again; which then completes the study.
	pop, _ := os.ReadFile(filepath.Join(sharded, "population.csv"))
	row := slices.IndexFunc(strings.Split(string(pop), "\n")[1:], func(l string) bool { return strings.HasPrefix(l, "run001-trial002,") })
	os.Remove(filepath.Join(sharded, "cells", "run001-trial002.json"))
	out, err := command("study", "merge", sharded).CombinedOutput()
	want := fmt.Sprintf("run001-trial002: row %d of population.csv (from 0), shard %d of 3", row, row%3)
	if err == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), fmt.Sprintf("--shard I/3 (on Slurm: FROM=cells ARRAY=%d ", row%3)) {
		t.Fatalf("merge with a missing cell: %v\n%s\nwant %q", err, out, want)
	}
	c := command("study", "run", "--out", sharded, "--shard", "auto/3")
	c.Env = append(c.Env, "SLURM_ARRAY_TASK_ID="+strconv.Itoa(row%3), "SLURM_ARRAY_TASK_COUNT=1")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("rerunning shard %d: %v\n%s", row%3, err, out)
	}
	if out, err := command("study", "merge", sharded).CombinedOutput(); err != nil {
		t.Fatalf("merge after the rerun: %v\n%s", err, out)
	}
	if got, want := stable(t, filepath.Join(sharded, "table.csv"), "seconds"), stable(t, filepath.Join(one, "table.csv"), "seconds"); got != want {
		t.Fatalf("table after the rerun:\n%s\none process:\n%s", got, want)
	}
}
