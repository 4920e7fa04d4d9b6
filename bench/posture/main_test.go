package main

import (
	"math"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
)

// Two episodes: one flipping forward twice (pitch rising by 4π) at 3 m/s, one lying on its back
// (pitch π) sliding backwards, ended by truncation.
func TestEpisodesTellRollingFromLyingOnTheBack(t *testing.T) {
	const steps = 100
	b := data.NewBuffer(18, 6)
	for ep := 0; ep < 2; ep++ {
		for i := 0; i < steps; i++ {
			o, next := make([]float32, 18), make([]float32, 18)
			if ep == 0 {
				o[0], o[2], next[2] = 3, float32(4*math.Pi*float64(i)/steps), float32(4*math.Pi*float64(i+1)/steps)
			} else {
				o[0], o[2], next[2] = -0.5, math.Pi, math.Pi
			}
			b.Obs, b.Next = append(b.Obs, o...), append(b.Next, next...)
			b.Act = append(b.Act, make([]float32, 6)...)
			b.Reward = append(b.Reward, o[0])
			b.Terminated = append(b.Terminated, false)
			b.Truncated = append(b.Truncated, i == steps-1)
		}
	}
	got := episodes(b)
	if len(got) != 2 {
		t.Fatalf("%d episodes, want 2", len(got))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-4 }
	roll, back := got[0], got[1]
	if roll.steps != steps || !near(roll.rolls, 2) || !near(roll.velocity, 3) || !near(roll.reward, 300) || math.Abs(roll.onBack-0.5) > 0.03 {
		t.Errorf("rolling episode: %+v, want 2 rolls at 3 m/s, half of it on the back", roll)
	}
	if back.steps != steps || !near(back.rolls, 0) || !near(back.velocity, -0.5) || back.onBack != 1 {
		t.Errorf("lying on the back: %+v, want no roll, -0.5 m/s, all on the back", back)
	}
}
