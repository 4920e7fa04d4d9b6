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
	start    time.Time
	trial0   time.Time // start of the current trial
	trialDur []time.Duration
	best     float64
	last     float64
	hasBest  bool
	lastDraw time.Time
	drawn    bool
}

func newProgress(w *os.File) *progress {
	st, err := w.Stat()
	tty := err == nil && st.Mode()&os.ModeCharDevice != 0
	return &progress{w: w, tty: tty, start: time.Now()}
}

func (p *progress) log(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.w, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func (p *progress) clear() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progress) eta(e pets.Event) string {
	if len(p.trialDur) == 0 || e.Trials == 0 {
		return "?"
	}
	var sum time.Duration
	for _, d := range p.trialDur {
		sum += d
	}
	per := sum / time.Duration(len(p.trialDur))
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
		p.trial0 = time.Now()
		if !p.tty {
			p.log("trial %d/%d: training", e.Trial, e.Trials)
		}
	case "step":
		if p.tty && time.Since(p.lastDraw) > 200*time.Millisecond {
			p.lastDraw = time.Now()
			p.clear()
			best := ""
			if p.hasBest {
				best = fmt.Sprintf(" | last %.1f best %.1f", p.last, p.best)
			}
			fmt.Fprintf(p.w, "trial %d/%d step %d/%d reward %.1f%s | ETA %s", e.Trial, e.Trials, e.Step, e.Steps, e.Reward, best, p.eta(e))
			p.drawn = true
		}
	case "trial":
		r := e.Row
		if r.Kind == pets.KindMPC {
			p.trialDur = append(p.trialDur, time.Since(p.trial0))
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
