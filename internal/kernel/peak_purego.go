//go:build !cgo || purego

package kernel

// The pure-Go build has no register loop to measure the peak with.
func peakKind() (int, bool)            { return 0, false }
func peakLoop(kind, iters int) float64 { return 0 }
