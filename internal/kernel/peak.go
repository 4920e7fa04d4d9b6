package kernel

import (
	"runtime"
	"sync"
	"time"
)

// Peak is the arithmetic peak of this machine's cores, measured by loops
// of fused multiply-adds in registers: the floor that speed targets are
// ratios to.
type Peak struct {
	ISA        string  // the loop measured: "avx512", "avx2" or "" (none)
	FP32       float64 // GFLOP/s of one core, fp32 FMA (2 FLOPs each)
	BF16       float64 // GFLOP/s of one core, bf16 dot products; 0 without AVX512_BF16
	FP32Cores  float64 // GFLOP/s of Cores cores running the fp32 loop at once
	Cores      int
	Supported  bool // a loop for this CPU exists in this build
	Measured   time.Duration
	HasBF16CPU bool // the CPU has AVX512_BF16
}

var (
	peakOnce sync.Once
	peak     Peak
)

// MeasurePeak measures the peak once per process (about a tenth of a
// second) and returns it; cores is how many cores to run the fp32 loop on
// at once (< 1: GOMAXPROCS), the first call's value counting.
func MeasurePeak(cores int) Peak {
	peakOnce.Do(func() {
		if cores < 1 {
			cores = runtime.GOMAXPROCS(0)
		}
		peak = measurePeak(cores)
	})
	return peak
}

func measurePeak(cores int) Peak {
	t0 := time.Now()
	kind, bf16 := peakKind()
	p := Peak{Cores: cores, HasBF16CPU: bf16}
	if kind == 0 {
		return p
	}
	p.Supported = true
	p.ISA = map[int]string{1: "avx2", 2: "avx512"}[kind]
	// Best of ten trials each, taken by turns, so that a neighbour on a
	// virtual machine who takes a share for a while spoils one trial of
	// each figure, not every trial of one.
	for range 10 {
		p.FP32 = max(p.FP32, rate(kind, 1))
		p.FP32Cores = max(p.FP32Cores, rate(kind, cores))
		if bf16 {
			p.BF16 = max(p.BF16, rate(3, 1))
		}
	}
	p.Measured = time.Since(t0)
	return p
}

// rate runs the loop of kind on n goroutines at once, each on its own OS
// thread, for a few milliseconds, and returns the GFLOP/s of all of them.
func rate(kind, n int) float64 {
	const iters = 1 << 20
	var wg, start sync.WaitGroup
	flops := make([]float64, n)
	start.Add(1)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start.Wait()
			flops[g] = peakLoop(kind, iters)
		}()
	}
	t0 := time.Now()
	start.Done()
	wg.Wait()
	sec := time.Since(t0).Seconds()
	var total float64
	for _, f := range flops {
		total += f
	}
	return total / sec / 1e9
}
