// Package data holds transitions: a growable buffer in contiguous float32
// storage with episode boundaries, its numpy .npz form (mbrl-lib's replay
// buffer keys, so datasets move between this library and Python), and
// builders of datasets on a task: random-action episodes, uniform samples
// and grids over a box of states and actions.
package data

import (
	"fmt"
	"math"
)

// Buffer is a sequence of transitions (obs, action, next obs, reward,
// terminated, truncated), each field stored contiguously, row-major. A
// transition whose terminated or truncated flag is set ends an episode.
type Buffer struct {
	ObsDim, ActDim int
	Obs            []float32 // Len×ObsDim
	Act            []float32 // Len×ActDim
	Next           []float32 // Len×ObsDim
	Reward         []float32
	Terminated     []bool
	Truncated      []bool
}

// NewBuffer returns an empty buffer for the given widths.
func NewBuffer(obsDim, actDim int) *Buffer {
	return &Buffer{ObsDim: obsDim, ActDim: actDim}
}

// Len is the number of transitions.
func (b *Buffer) Len() int { return len(b.Reward) }

// Add appends one transition.
func (b *Buffer) Add(obs, act, next []float32, reward float32, terminated, truncated bool) {
	b.Obs = append(b.Obs, obs[:b.ObsDim]...)
	b.Act = append(b.Act, act[:b.ActDim]...)
	b.Next = append(b.Next, next[:b.ObsDim]...)
	b.Reward = append(b.Reward, reward)
	b.Terminated = append(b.Terminated, terminated)
	b.Truncated = append(b.Truncated, truncated)
}

// Append adds every transition of o, which must have b's widths.
func (b *Buffer) Append(o *Buffer) error {
	if o.ObsDim != b.ObsDim || o.ActDim != b.ActDim {
		return fmt.Errorf("data: appending a %d/%d buffer to a %d/%d one", o.ObsDim, o.ActDim, b.ObsDim, b.ActDim)
	}
	b.Obs = append(b.Obs, o.Obs...)
	b.Act = append(b.Act, o.Act...)
	b.Next = append(b.Next, o.Next...)
	b.Reward = append(b.Reward, o.Reward...)
	b.Terminated = append(b.Terminated, o.Terminated...)
	b.Truncated = append(b.Truncated, o.Truncated...)
	return nil
}

// Subset returns a new buffer of the transitions at idx, in that order.
func (b *Buffer) Subset(idx []int) *Buffer {
	s := NewBuffer(b.ObsDim, b.ActDim)
	s.Obs = make([]float32, 0, len(idx)*b.ObsDim)
	s.Act = make([]float32, 0, len(idx)*b.ActDim)
	s.Next = make([]float32, 0, len(idx)*b.ObsDim)
	for _, i := range idx {
		s.Add(b.Obs[i*b.ObsDim:(i+1)*b.ObsDim], b.Act[i*b.ActDim:(i+1)*b.ActDim], b.Next[i*b.ObsDim:(i+1)*b.ObsDim], b.Reward[i], b.Terminated[i], b.Truncated[i])
	}
	return s
}

// Episode is a half-open range [Start, End) of transitions.
type Episode struct{ Start, End int }

// Episodes splits the buffer at transitions that end an episode; a final
// run without an ending flag counts as an episode too.
func (b *Buffer) Episodes() []Episode {
	var eps []Episode
	start := 0
	for i := 0; i < b.Len(); i++ {
		if b.Terminated[i] || b.Truncated[i] {
			eps = append(eps, Episode{start, i + 1})
			start = i + 1
		}
	}
	if start < b.Len() {
		eps = append(eps, Episode{start, b.Len()})
	}
	return eps
}

// EpisodeReturns sums the rewards of each episode.
func (b *Buffer) EpisodeReturns() []float64 {
	var r []float64
	for _, e := range b.Episodes() {
		var s float64
		for _, v := range b.Reward[e.Start:e.End] {
			s += float64(v)
		}
		r = append(r, s)
	}
	return r
}

// Validate checks that the fields' lengths agree with each other and the
// widths, and that every value is finite.
func (b *Buffer) Validate() error {
	n := b.Len()
	if b.ObsDim < 1 || b.ActDim < 1 {
		return fmt.Errorf("data: widths obs %d, action %d", b.ObsDim, b.ActDim)
	}
	checks := []struct {
		name string
		got  int
		want int
	}{
		{"obs", len(b.Obs), n * b.ObsDim}, {"action", len(b.Act), n * b.ActDim},
		{"next_obs", len(b.Next), n * b.ObsDim}, {"terminated", len(b.Terminated), n},
		{"truncated", len(b.Truncated), n},
	}
	for _, c := range checks {
		if c.got != c.want {
			return fmt.Errorf("data: %s has %d values, want %d for %d transitions", c.name, c.got, c.want, n)
		}
	}
	for _, f := range []struct {
		name  string
		v     []float32
		width int
	}{{"obs", b.Obs, b.ObsDim}, {"action", b.Act, b.ActDim}, {"next_obs", b.Next, b.ObsDim}, {"reward", b.Reward, 1}} {
		for i, v := range f.v {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("data: %s of transition %d (column %d) is %g", f.name, i/f.width, i%f.width, v)
			}
		}
	}
	return nil
}

// TransitionBytes is the memory a Buffer takes per transition of
// obsDim-wide observations and actDim-wide actions.
func TransitionBytes(obsDim, actDim int) float64 {
	return float64(4*(2*obsDim+actDim+1) + 2)
}
