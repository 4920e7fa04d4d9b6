package parallel

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCoversEveryTaskOnce(t *testing.T) {
	for _, workers := range []int{1, 2, 3, 8} {
		p := New(workers)
		for _, n := range []int{1, 2, 7, 100} {
			hits := make([]int32, n)
			var maxWorker atomic.Int32
			p.Run(n, func(w, i int) {
				atomic.AddInt32(&hits[i], 1)
				if int32(w) > maxWorker.Load() {
					maxWorker.Store(int32(w))
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("workers=%d n=%d: task %d ran %d times", workers, n, i, h)
				}
			}
			if int(maxWorker.Load()) >= workers {
				t.Fatalf("worker index %d out of range", maxWorker.Load())
			}
		}
		p.Close()
	}
}

func TestPanicReachesCaller(t *testing.T) {
	p := New(2)
	defer p.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("a task's panic was lost")
		}
		// The pool still works after a panic.
		var n atomic.Int32
		p.Run(10, func(_, _ int) { n.Add(1) })
		if n.Load() != 10 {
			t.Fatalf("ran %d tasks after a panic, want 10", n.Load())
		}
	}()
	p.Run(10, func(_, i int) {
		if i == 5 {
			panic("boom")
		}
	})
}

func TestRunDoesNotAllocate(t *testing.T) {
	p := New(2)
	defer p.Close()
	out := make([]int, 64)
	fn := func(_, i int) { out[i] = i }
	allocs := testing.AllocsPerRun(100, func() { p.Run(len(out), fn) })
	if allocs != 0 {
		t.Fatalf("Run allocated %.1f times per call", allocs)
	}
}

func TestDroppedPoolStopsItsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		p := New(4)
		p.Run(4, func(_, _ int) {})
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+4 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+4 {
		t.Fatalf("%d goroutines remain after dropping pools (%d before)", g, before)
	}
}

func TestYielderYieldsOncePerInterval(t *testing.T) {
	var y Yielder
	start := time.Now() // no later than the yield's own time
	if !y.Yield() {
		t.Fatal("a new Yielder did not yield")
	}
	for i := 0; i < 1000 && time.Since(start) < yieldEvery/2; i++ {
		if y.Yield() {
			t.Fatalf("yielded again within %v of the last yield (interval %v)", time.Since(start), yieldEvery)
		}
	}
	time.Sleep(yieldEvery)
	if !y.Yield() {
		t.Fatalf("did not yield %v after the last yield", yieldEvery)
	}
}
