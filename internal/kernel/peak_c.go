//go:build cgo && !purego

package kernel

/*
int mm_peak_kind(int *bf16);
double mm_peak(int kind, long iters, float *sink);
*/
import "C"

func peakKind() (int, bool) {
	var bf16 C.int
	k := C.mm_peak_kind(&bf16)
	return int(k), bf16 != 0
}

func peakLoop(kind, iters int) float64 {
	var sink C.float
	return float64(C.mm_peak(C.int(kind), C.long(iters), &sink))
}
