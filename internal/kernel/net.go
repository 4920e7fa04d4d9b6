package kernel

import "math"

// A Net is an ensemble MLP packed for inference, in fp32 or in bfloat16
// (products of bf16 weights and inputs accumulated in fp32, hidden
// activations carried in bf16, the output in fp32), its weights reordered
// once into the layout the kernel wants. Where the CPU has AVX-512 (and
// AVX512_BF16, for bf16) it runs on our own kernel (mlp512.c: blocks of
// rows through every layer, activations in L1), where it has AVX2 on that
// kernel's AVX2 version in fp32 (mlp256.c); elsewhere on oneDNN (each
// layer a matmul with its bias and activation fused into the epilogue).
// NetKernel says which. It sees the weights as they were when it was
// made. Forward is safe for concurrent use by distinct workers.
//
// NetAvailable reports whether this build has it (cgo with oneDNN: not
// under -tags purego or nodnnl).

// NetRows is the granularity of a Net's own kernels: they compute a
// member's rows in blocks of 32, the last one as 16 or 32 rows, so a call
// pays for its rows rounded up to a multiple of NetRows.
const NetRows = 16

// ownKernel is the best of our kernels nets may run on, where the CPU can:
// 2 mlp512.c's (AVX-512), 1 mlp256.c's (AVX2), 0 none (oneDNN). Tests
// lower it to check the others on machines that have the best.
var ownKernel = 2

// NewNet packs an MLP of the given widths (input, hidden…, output) and
// members: W[l] holds the members' row-major in×out weights of layer l one
// after another, B[l] their biases. act is the hidden layers' activation
// (the output layer is linear); bf16 selects bfloat16 arithmetic, which
// needs HasBF16. workers is how many goroutines may call Forward at once,
// each with its own index.
func NewNet(widths []int, members int, act Act, slope float32, bf16 bool, W, B [][]float32, workers int) (*Net, error) {
	return newNet(widths, members, act, slope, bf16, W, B, workers)
}

// HasBF16 reports whether the CPU has AVX512_BF16 (Zen 4 and later, Intel
// Cooper Lake and Sapphire Rapids), which bfloat16 inference needs.
func HasBF16() bool {
	_, bf16 := peakKind()
	return bf16 && NetAvailable
}

// BF16 rounds x to the nearest bfloat16 (ties to even), as AVX512_BF16's
// conversions do, returned as the float32 of the same value. It is the
// reference the bf16 path is tested against on any machine.
func BF16(x float32) float32 {
	u := math.Float32bits(x)
	if u&0x7fffffff > 0x7f800000 {
		return math.Float32frombits((u | 0x400000) &^ 0xffff)
	}
	u += 0x7fff + (u>>16)&1
	return math.Float32frombits(u &^ 0xffff)
}
