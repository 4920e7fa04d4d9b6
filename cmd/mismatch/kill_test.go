package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run as the mismatch command in child
// processes, so that tests can kill it.
func TestMain(m *testing.M) {
	if os.Getenv("MISMATCH_AS_MAIN") == "1" {
		os.Args = append([]string{"mismatch"}, strings.Fields(os.Getenv("MISMATCH_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MISMATCH_AS_MAIN=1", "MISMATCH_ARGS="+strings.Join(args, " "))
	return cmd
}

// killLoop starts the command and kills it with SIGKILL after a random
// delay under maxDelay, kills times over, starting it again after each
// kill; then it lets a run finish. It returns the number of kills that
// struck a running process (a run that finished before its kill counts
// none, and ends the loop).
func killLoop(t *testing.T, seed uint64, maxDelay time.Duration, kills int, args ...string) int {
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
				t.Fatalf("run failed after %d kills: %v\n%s", struck, err, out.String())
			}
			return struck
		case <-timeout:
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			struck++
		}
	}
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
		skip := false
		for _, d := range drop {
			skip = skip || h == d
		}
		if !skip {
			keep = append(keep, i)
		}
	}
	var out []string
	for _, l := range lines {
		f := strings.Split(l, ",")
		var k []string
		for _, i := range keep {
			k = append(k, f[i])
		}
		out = append(out, strings.Join(k, ","))
	}
	return strings.Join(out, "\n")
}

// TestKilledPETSRunResumesExactly kills a PETS run at random moments and
// reruns it: the final table equals an uninterrupted run's.
func TestKilledPETSRunResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and reruns processes")
	}
	args := "pets --task pointmass --preset fast trials=4 model.hidden=[16] train.epochs=8 planner.population=30 planner.particles=2 planner.horizon=8"
	ref := t.TempDir()
	t0 := time.Now()
	if out, err := command(append(strings.Fields(args), "--out", ref)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	full := time.Since(t0)
	want := stable(t, filepath.Join(ref, "trials.csv"), "train_s", "plan_s", "plan_ms_per_step")
	wantData, _ := os.ReadFile(filepath.Join(ref, "data.npz"))
	total := 0
	for round := uint64(0); round < 3; round++ {
		killed := t.TempDir()
		kills := killLoop(t, 10+round, full/4, 8, append(strings.Fields(args), "--out", killed)...)
		total += kills
		got := stable(t, filepath.Join(killed, "trials.csv"), "train_s", "plan_s", "plan_ms_per_step")
		if got != want {
			t.Fatalf("after %d kills the table differs:\n%s\nuninterrupted:\n%s", kills, got, want)
		}
		if b, _ := os.ReadFile(filepath.Join(killed, "data.npz")); !bytes.Equal(b, wantData) {
			t.Fatal("the data differs from an uninterrupted run's")
		}
	}
	t.Logf("%d kills in 3 rounds (an uninterrupted run takes %s)", total, full.Round(time.Millisecond))
}

// TestKilledStudyResumesExactly does the same for a small study.
func TestKilledStudyResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and reruns processes")
	}
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(spec, []byte(`task: pointmass
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
`), 0o644)
	ref := t.TempDir()
	args := []string{"study", "run", "--task", "pointmass", "--spec", spec, "--workers", "2"}
	t0 := time.Now()
	if out, err := command(append(args, "--out", ref)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	full := time.Since(t0)
	total := 0
	for round := uint64(0); round < 3; round++ {
		killed := t.TempDir()
		kills := killLoop(t, 20+round, full/4, 8, append(args, "--out", killed)...)
		total += kills
		for _, f := range []string{"table.csv", "correlations.csv", "population.csv"} {
			if got, want := stable(t, filepath.Join(killed, f), "seconds"), stable(t, filepath.Join(ref, f), "seconds"); got != want {
				t.Fatalf("after %d kills %s differs:\n%s\nuninterrupted:\n%s", kills, f, got, want)
			}
		}
	}
	t.Logf("%d kills in 3 rounds (an uninterrupted run takes %s)", total, full.Round(time.Millisecond))
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
	// A merge with a cell missing names it.
	os.Remove(filepath.Join(sharded, "cells", "run001-trial002.json"))
	if out, err := command("study", "merge", sharded).CombinedOutput(); err == nil || !strings.Contains(string(out), "not done") {
		t.Fatalf("merge with a missing cell: %v\n%s", err, out)
	}
}
