// Package rng provides the seeded random numbers of the library: uniform,
// normal and truncated-normal variates in float32 and float64, and
// independent child streams for parallel work.
//
// Streams are defined by this package's own code on top of the PCG generator
// of math/rand/v2, whose output for a seed is fixed, so a seed gives the same
// numbers on every platform and Go version. Work split across goroutines
// stays reproducible when each task draws from a child stream named by the
// task's index (Child), never from a stream shared between workers.
package rng

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Source is a seeded stream of random numbers. It is not safe for concurrent
// use; give each goroutine its own, from Child.
type Source struct {
	pcg  rand.PCG
	seed uint64
}

// New returns a stream for seed.
func New(seed uint64) *Source {
	s := new(Source)
	s.Reseed(seed)
	return s
}

// Reseed makes s the stream New(seed) returns, in place: for hot loops
// that start a stream per chunk of work and must not allocate.
func (s *Source) Reseed(seed uint64) {
	s.seed = seed
	s.pcg.Seed(mix(seed), mix(seed^0x9e3779b97f4a7c15))
}

// mix is splitmix64's finaliser: nearby seeds give unrelated states.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Seed reports the seed the stream was made from.
func (s *Source) Seed() uint64 { return s.seed }

// Child returns the i-th child stream of s, derived from s's seed alone: it
// does not depend on, or advance, s's position.
func (s *Source) Child(i uint64) *Source {
	return New(mix(s.seed^mix(i+1)) + i)
}

// Named returns the child stream of s named name, derived from s's seed
// alone like Child: the parts of a computation (its model's initial
// weights, each trial's training, …) draw from streams named for them, so
// that no two parts share one by an accident of numbering, and adding a
// part changes no other's stream.
func (s *Source) Named(name string) *Source { return s.Child(fnv(name)) }

// fnv is the 64-bit FNV-1a hash.
func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Uint64 returns 64 uniformly random bits.
func (s *Source) Uint64() uint64 { return s.pcg.Uint64() }

// Float64 returns a uniform number in [0, 1) with 53 random bits.
func (s *Source) Float64() float64 { return float64(s.pcg.Uint64()>>11) * 0x1p-53 }

// Float32 returns a uniform number in [0, 1) with 24 random bits.
func (s *Source) Float32() float32 { return float32(s.pcg.Uint64()>>40) * 0x1p-24 }

// Uniform returns a uniform number in [lo, hi).
func (s *Source) Uniform(lo, hi float64) float64 { return lo + (hi-lo)*s.Float64() }

// IntN returns a uniform integer in [0, n). It panics if n <= 0.
func (s *Source) IntN(n int) int {
	if n <= 0 {
		panic("rng: IntN of a non-positive bound")
	}
	// Lemire's multiply-and-reject: unbiased with one multiply in most draws.
	un := uint64(n)
	hi, lo := bits.Mul64(s.pcg.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(s.pcg.Uint64(), un)
		}
	}
	return int(hi)
}

// Perm fills p with a uniformly random permutation of 0..len(p)-1.
func (s *Source) Perm(p []int) {
	for i := range p {
		p[i] = i
	}
	s.Shuffle(p)
}

// Shuffle puts p in a uniformly random order.
func (s *Source) Shuffle(p []int) {
	for i := len(p) - 1; i > 0; i-- {
		j := s.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}

// Normal returns a standard normal variate, by the ziggurat method.
func (s *Source) Normal() float64 {
	u := s.pcg.Uint64()
	if x, ok := zigFast(u); ok {
		return x
	}
	return s.normalSlow(u)
}

// zigFast is the ziggurat's common case, small enough to inline: the low
// bits of u pick a layer and its top 32 bits, a signed fraction of the
// layer's width, land inside the layer's rectangle about 97% of the time.
func zigFast(u uint64) (float64, bool) {
	i := u & (zigLayers - 1)
	j := int32(u >> 32)
	m := j >> 31
	return float64(j) * zigW[i], uint32((j^m)-m) < zigK[i]
}

func (s *Source) normalSlow(u uint64) float64 {
	for {
		i := u & (zigLayers - 1)
		j := int32(u >> 32)
		x := float64(j) * zigW[i]
		if i == 0 {
			return s.normalTail(j < 0)
		}
		// The wedge between the layer's rectangle and the density.
		if zigF[i]+s.Float64()*(zigF[i-1]-zigF[i]) < math.Exp(-0.5*x*x) {
			return x
		}
		u = s.pcg.Uint64()
		if x, ok := zigFast(u); ok {
			return x
		}
	}
}

// normalTail samples beyond zigR by Marsaglia's exponential method.
func (s *Source) normalTail(neg bool) float64 {
	for {
		x := -math.Log(1-s.Float64()) / zigR
		y := -math.Log(1 - s.Float64())
		if 2*y >= x*x {
			if neg {
				return -(zigR + x)
			}
			return zigR + x
		}
	}
}

// TruncNormal returns a standard normal variate conditioned on |x| ≤ bound,
// by rejection. bound must be positive; at 2 (PETS's truncation) about 95%
// of draws are kept.
func (s *Source) TruncNormal(bound float64) float64 {
	for {
		if x := s.Normal(); math.Abs(x) <= bound {
			return x
		}
	}
}

// FillNormal sets every element of dst to mean + std·N(0,1).
func (s *Source) FillNormal(dst []float32, mean, std float32) {
	for i := range dst {
		u := s.pcg.Uint64()
		x, ok := zigFast(u)
		if !ok {
			x = s.normalSlow(u)
		}
		dst[i] = mean + std*float32(x)
	}
}

// FillTruncNormal sets every element of dst to mean + std·x, x a standard
// normal truncated to |x| ≤ bound.
func (s *Source) FillTruncNormal(dst []float32, mean, std float32, bound float64) {
	for i := range dst {
		dst[i] = mean + std*float32(s.TruncNormal(bound))
	}
}

// FillUniform sets every element of dst uniformly in [lo, hi).
func (s *Source) FillUniform(dst []float32, lo, hi float32) {
	for i := range dst {
		dst[i] = lo + (hi-lo)*s.Float32()
	}
}

// The ziggurat of Marsaglia and Tsang (2000) with 128 layers, its tables
// computed at start-up from the tail start zigR and the common layer area.
const (
	zigLayers = 128
	zigR      = 3.442619855899
	zigV      = 9.91256303526217e-3
)

var (
	zigK [zigLayers]uint32  // |j| below zigK[i] lies inside layer i's rectangle
	zigW [zigLayers]float64 // scale from j to x in layer i
	zigF [zigLayers]float64 // density at each layer's edge
)

func init() {
	const m = 1 << 31
	dn, tn := zigR, zigR
	q := zigV / math.Exp(-0.5*dn*dn)
	zigK[0] = uint32(dn / q * m)
	zigK[1] = 0
	zigW[0] = q / m
	zigW[zigLayers-1] = dn / m
	zigF[0] = 1
	zigF[zigLayers-1] = math.Exp(-0.5 * dn * dn)
	for i := zigLayers - 2; i >= 1; i-- {
		dn = math.Sqrt(-2 * math.Log(zigV/dn+math.Exp(-0.5*dn*dn)))
		zigK[i+1] = uint32(dn / tn * m)
		tn = dn
		zigF[i] = math.Exp(-0.5 * dn * dn)
		zigW[i] = dn / m
	}
}
