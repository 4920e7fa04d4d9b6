// Command posture says how a half-cheetah moved in each episode of a data
// file: the reward, the mean forward velocity, the share of steps spent on
// its back (torso pitch past ±90°) and the net number of forward or
// backward rolls — what the reward alone hides, since crawling on the back
// and running upright or rolling all earn by forward velocity.
//
//	go run ./bench/posture runs/bench-halfcheetah-fast-seed1/data.npz
//
// Episodes are split where the data mark an end (terminated or truncated).
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"os"

	"github.com/mismatch-rl/mismatch/data"
)

func main() {
	log.SetFlags(0)
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: posture DATA.npz (half-cheetah transitions)")
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	b, err := data.ReadNPZ(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	// PETS's half-cheetah observation: forward velocity, root height,
	// torso pitch (unwrapped), then the joints and velocities.
	if b.ObsDim != 18 || b.ActDim != 6 {
		log.Fatalf("%s: %d-wide observations and %d-wide actions; half-cheetah has 18 and 6", flag.Arg(0), b.ObsDim, b.ActDim)
	}
	fmt.Println("episode,steps,reward,mean_velocity,on_back,rolls")
	for i, e := range episodes(b) {
		fmt.Printf("%d,%d,%.1f,%.2f,%.2f,%.1f\n", i, e.steps, e.reward, e.velocity, e.onBack, e.rolls)
	}
}

// episode is how the cheetah moved in one episode.
type episode struct {
	steps                           int
	reward, velocity, onBack, rolls float64
}

// episodes splits b where the data mark an end and summarises each part.
func episodes(b *data.Buffer) []episode {
	var out []episode
	od, n := b.ObsDim, len(b.Reward)
	for start := 0; start < n; {
		end := start
		for end < n && !b.Terminated[end] && !b.Truncated[end] {
			end++
		}
		end = min(end+1, n)
		e := episode{steps: end - start}
		for i := start; i < end; i++ {
			o := b.Obs[i*od : (i+1)*od]
			e.reward += float64(b.Reward[i])
			e.velocity += float64(o[0])
			if math.Cos(float64(o[2])) < 0 {
				e.onBack++
			}
		}
		e.velocity /= float64(e.steps)
		e.onBack /= float64(e.steps)
		// The pitch is a rotation about +y, with x forward and z up: a
		// positive turn puts the nose down, so a front flip adds 2π.
		e.rolls = (float64(b.Next[(end-1)*od+2]) - float64(b.Obs[start*od+2])) / (2 * math.Pi)
		out = append(out, e)
		start = end
	}
	return out
}
