package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mismatch-rl/mismatch/pets"
)

// TestProgressWithinLongEpisodes: a run logging to a file says, about once
// a minute, where it is in an episode, with the reward so far and when the
// episode and the run will end, from the pace so far, even before any
// trial has finished.
func TestProgressWithinLongEpisodes(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progress{w: &buf, now: func() time.Time { return clock }, start: clock}
	p.event(pets.Event{Phase: "train", Trial: 1, Trials: 3})
	clock = clock.Add(30 * time.Second) // training
	// 1000 steps of 0.5 s each.
	for step := 1; step <= 1000; step++ {
		p.event(pets.Event{Phase: "step", Trial: 1, Trials: 3, Step: step, Steps: 1000, Reward: float64(step) / 10})
		clock = clock.Add(500 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// A line for training, then one a minute: 500 s of stepping.
	if len(lines) < 8 || len(lines) > 10 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	// The first step line, a minute after training began (step 61): 939
	// steps of 0.5 s left; the run: 3 trials of 30 s + 500 s, less the
	// 61/1000 of one that is done.
	want := "00:01:00 trial 1/3: step 61/1000, reward so far 6.10, episode ends in 7m50s, run ETA 25m58s"
	if !strings.Contains(lines[1], want) {
		t.Errorf("first step line %q, want %q", lines[1], want)
	}
	p.event(pets.Event{Phase: "trial", Trial: 1, Trials: 3, Row: &pets.Trial{Trial: 1, Kind: pets.KindMPC, Reward: 100, Steps: 1000}})
	if last := buf.String(); !strings.Contains(last, "trial 1/3: reward 100.00 (best 100.00)") || !strings.Contains(last, "ETA 17m40s") {
		t.Errorf("trial line:\n%s", last)
	}
}

// TestCellsLeft: the cells still to do, in rounds of the workers, at the
// done cells' mean time.
func TestCellsLeft(t *testing.T) {
	for _, c := range []struct {
		sec                  float64
		done, total, workers int
		want                 time.Duration
	}{
		{600, 3, 10, 2, 800 * time.Second}, // 200 s a cell, 7 left: 4 rounds of 2
		{600, 3, 10, 1, 1400 * time.Second},
		{600, 3, 10, 7, 200 * time.Second},
		{90.4, 1, 2, 2, 90 * time.Second},
		{100, 5, 5, 2, 0},
		{0, 0, 5, 2, 0},
	} {
		if got := cellsLeft(c.sec, c.done, c.total, c.workers); got != c.want {
			t.Errorf("cellsLeft(%g s, %d of %d, %d workers) = %v, want %v", c.sec, c.done, c.total, c.workers, got, c.want)
		}
	}
}
