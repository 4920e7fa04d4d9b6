package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mismatch-rl/mismatch/pets"
)

// progress shows a run's progress: one line rewritten in place on a
// terminal, plain log lines otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	now      func() time.Time
	start    time.Time
	trial0   time.Time // start of the current trial
	plan0    time.Time // its first step, after training
	trialDur []time.Duration
	best     float64
	last     float64
	hasBest  bool
	lastDraw time.Time
	drawn    bool
}

// logEvery is how often a run that does not write to a terminal logs its
// place within an episode (half-cheetah's take many minutes).
const logEvery = time.Minute

func newProgress(w *os.File) *progress {
	st, err := w.Stat()
	tty := err == nil && st.Mode()&os.ModeCharDevice != 0
	return &progress{w: w, tty: tty, now: time.Now, start: time.Now()}
}

func (p *progress) log(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.w, p.now().Format("15:04:05 ")+format+"\n", args...)
}

// episodeLeft is the time the current episode still needs, from its pace
// so far.
func (p *progress) episodeLeft(e pets.Event) time.Duration {
	if e.Step < 2 || p.plan0.IsZero() {
		return 0
	}
	per := p.now().Sub(p.plan0) / time.Duration(e.Step-1)
	return (time.Duration(e.Steps-e.Step) * per).Round(time.Second)
}

func (p *progress) clear() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// eta is the time the run still needs: the finished trials' mean
// duration, or before any has finished, this trial's pace so far.
func (p *progress) eta(e pets.Event) string {
	var per time.Duration
	switch {
	case e.Trials == 0:
		return "?"
	case len(p.trialDur) > 0:
		var sum time.Duration
		for _, d := range p.trialDur {
			sum += d
		}
		per = sum / time.Duration(len(p.trialDur))
	case e.Step > 1 && !p.plan0.IsZero():
		per = p.plan0.Sub(p.trial0) + time.Duration(float64(p.now().Sub(p.plan0))*float64(e.Steps)/float64(e.Step-1))
	default:
		return "?"
	}
	left := time.Duration(e.Trials-e.Trial+1) * per
	if e.Steps > 0 {
		left -= time.Duration(float64(per) * float64(e.Step) / float64(e.Steps))
	}
	return max(left, 0).Round(time.Second).String()
}

func (p *progress) event(e pets.Event) {
	switch e.Phase {
	case "resumed":
		r := e.Row
		if !p.hasBest || r.Reward > p.best {
			p.best, p.hasBest = r.Reward, true
		}
		p.last = r.Reward
		if r.Trial == e.Trial {
			p.log("resuming after trial %d/%d (best reward so far %.2f)", e.Trial, e.Trials, p.best)
		}
	case "train":
		p.trial0, p.plan0 = p.now(), time.Time{}
		p.lastDraw = p.trial0
		if !p.tty {
			p.log("trial %d/%d: training", e.Trial, e.Trials)
		}
	case "step":
		if e.Step == 1 {
			// Training is over; the episode's pace is measured from the
			// end of its first step.
			p.plan0 = p.now()
		}
		switch {
		case p.tty && p.now().Sub(p.lastDraw) > 200*time.Millisecond:
			p.lastDraw = p.now()
			p.clear()
			best := ""
			if p.hasBest {
				best = fmt.Sprintf(" | last %.1f best %.1f", p.last, p.best)
			}
			fmt.Fprintf(p.w, "trial %d/%d step %d/%d reward %.1f%s | episode ends in %s | ETA %s", e.Trial, e.Trials, e.Step, e.Steps, e.Reward, best, p.episodeLeft(e), p.eta(e))
			p.drawn = true
		case !p.tty && p.now().Sub(p.lastDraw) >= logEvery && e.Step < e.Steps:
			p.lastDraw = p.now()
			p.log("trial %d/%d: step %d/%d, reward so far %.2f, episode ends in %s, run ETA %s", e.Trial, e.Trials, e.Step, e.Steps, e.Reward, p.episodeLeft(e), p.eta(e))
		}
	case "trial":
		r := e.Row
		if r.Kind == pets.KindMPC {
			p.trialDur = append(p.trialDur, p.now().Sub(p.trial0))
			p.last = r.Reward
			if !p.hasBest || r.Reward > p.best {
				p.best, p.hasBest = r.Reward, true
			}
			p.log("trial %d/%d: reward %.2f (best %.2f), %d steps, trained %d epochs in %.1fs, planning %.0f ms/step, ETA %s",
				r.Trial, e.Trials, r.Reward, p.best, r.Steps, r.Epochs, r.TrainSec, r.StepMillis, p.eta(pets.Event{Trial: e.Trial + 1, Trials: e.Trials}))
		} else {
			p.log("random trial %d: reward %.2f, %d steps", r.Trial, r.Reward, r.Steps)
		}
	}
}

func (p *progress) done() { p.clear() }
