// Package parallel runs indexed tasks on a fixed set of goroutines without
// allocating per call, for the hot loops of inference and rollouts, and
// gives those loops a scheduling point that costs next to nothing
// (Yielder).
package parallel

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool runs the tasks of one call to Run at a time on its workers. The
// goroutine calling Run is worker 0; the pool starts workers−1 more.
type Pool struct {
	*state
}

type state struct {
	workers int
	mu      sync.Mutex // serialises Run and Close
	closed  bool
	wake    []chan struct{} // fixed after New
	wg      sync.WaitGroup

	fn    func(worker, task int)
	n     int64
	next  atomic.Int64
	panic atomic.Pointer[panicked]
}

type panicked struct{ v any }

// New returns a pool of the given number of workers; workers < 1 means
// GOMAXPROCS. Its goroutines end when the pool is closed or collected.
func New(workers int) *Pool {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &state{workers: workers, wake: make([]chan struct{}, workers)}
	for w := 1; w < workers; w++ {
		s.wake[w] = make(chan struct{})
		go s.loop(w, s.wake[w])
	}
	p := &Pool{s}
	runtime.AddCleanup(p, func(s *state) { s.close() }, s)
	return p
}

// Workers reports how many goroutines run tasks, the caller's included.
func (p *Pool) Workers() int { return p.workers }

// Run calls fn(worker, task) for every task in [0, n) and returns when all
// have finished. Tasks are handed out dynamically, so which worker runs a
// task varies between calls; tasks must write disjoint outputs and may use
// per-worker scratch indexed by worker. A panic in a task is re-raised in
// the caller once all workers are idle. To keep Run free of allocations,
// pass a func value made once (a stored method value), not a new closure.
func (p *Pool) Run(n int, fn func(worker, task int)) {
	if n <= 0 {
		return
	}
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("parallel: Run on a closed pool")
	}
	s.fn, s.n = fn, int64(n)
	s.next.Store(0)
	helpers := min(s.workers, n) - 1
	s.wg.Add(helpers)
	for w := 1; w <= helpers; w++ {
		s.wake[w] <- struct{}{}
	}
	s.work(0)
	s.wg.Wait()
	s.fn = nil
	if pv := s.panic.Swap(nil); pv != nil {
		panic(fmt.Sprintf("parallel: task panicked: %v", pv.v))
	}
}

// Close stops the pool's goroutines. The pool must not be used afterwards.
func (p *Pool) Close() { p.state.close() }

func (s *state) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for w := 1; w < s.workers; w++ {
		close(s.wake[w])
	}
}

func (s *state) loop(w int, wake <-chan struct{}) {
	for range wake {
		s.work(w)
		s.wg.Done()
	}
}

func (s *state) work(w int) {
	defer func() {
		if v := recover(); v != nil {
			s.panic.CompareAndSwap(nil, &panicked{v})
			s.next.Store(s.n) // stop handing out tasks
		}
	}()
	for {
		t := s.next.Add(1) - 1
		if t >= s.n {
			return
		}
		s.fn(w, int(t))
	}
}
