//go:build !cgo || purego

package kernel

func biasAct(act Act, slope float32, z, h, bias []float32, rows, cols int) {
	biasActGo(act, slope, z, h, bias, rows, cols)
}

func actBackward(act Act, slope float32, dz, dh, z, h []float32) {
	actBackwardGo(act, slope, dz, dh, z, h)
}

func expVec(dst, x []float32)                        { expGo(dst, x) }
func sigmoidVec(dst, x []float32)                    { sigmoidGo(dst, x) }
func softplusVec(dst, x []float32)                   { softplusGo(dst, x) }
func sincosVec(sin, cos, x []float32)                { sincosGo(sin, cos, x) }
func gaussSample(sample, out, hi, lo, eps []float32) { gaussSampleGo(sample, out, hi, lo, eps) }
func logVarBound(lv, raw, hi, lo []float32)          { logVarBoundGo(lv, raw, hi, lo) }
func colSums(s, x []float32)                         { colSumsGo(s, x) }
func gaussLoss(dOut, dHi, dLo, out, y, w, hi, lo []float32, c float64) float64 {
	return gaussLossGo(dOut, dHi, dLo, out, y, w, hi, lo, c)
}
func normals(dst []float32, key uint64)  { normalsGo(dst, key) }
func standardize(x, mean, std []float32) { standardizeGo(x, mean, std) }

func adamUpdate(p, g, m, v []float32, b1, b2, lr, rbc2, eps float32) {
	adamUpdateGo(p, g, m, v, b1, b2, lr, rbc2, eps)
}

func decay(g, w []float32, lambda float32) { decayGo(g, w, lambda) }

func adamDecay(p, g, m, v []float32, lambda, b1, b2, lr, rbc2, eps float32) {
	adamDecayGo(p, g, m, v, lambda, b1, b2, lr, rbc2, eps)
}
