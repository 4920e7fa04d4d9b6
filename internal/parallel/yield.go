package parallel

import (
	"runtime"
	"time"
)

// yieldEvery is how long a Yielder lets its goroutine run between yields:
// well under the 10 ms after which the runtime's monitor takes a goroutine
// for a hog, and long enough that a yield's cost — 21 µs when another
// processor is idle, for the thread it wakes (Zen 5 VM) — is a hundredth of
// the time between them.
const yieldEvery = 2 * time.Millisecond

// A Yielder is a scheduling point for a loop whose iterations spend most of
// their time in cgo calls: a goroutine that runs 10 ms without one is
// preempted by the runtime's monitor, which takes its processor during the
// cgo call, hands it off and then watches every 20 µs — thousands of
// wake-ups a second, 7% of a core a planner's other goroutines need. The
// zero value is ready; a Yielder is not safe for concurrent use.
type Yielder struct{ last time.Time }

// Yield calls runtime.Gosched if the goroutine has not yielded through y in
// the last 2 ms, and reports whether it did.
func (y *Yielder) Yield() bool {
	now := time.Now()
	if now.Sub(y.last) < yieldEvery {
		return false
	}
	runtime.Gosched()
	y.last = now
	return true
}
