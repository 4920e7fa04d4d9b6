package kernel

// sgemmGo is the pure-Go matrix multiply. It is the backend of purego builds
// and the reference the OpenBLAS backend is tested against. Four rows of C
// are updated together so each row of B is loaded once for all four.
func sgemmGo(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if alpha == 0 || k == 0 {
		return
	}
	// at returns alpha·op(A)[i,p].
	at := func(i, p int) float32 {
		if transA {
			return alpha * a[p*lda+i]
		}
		return alpha * a[i*lda+p]
	}
	if transB {
		for i := 0; i < m; i++ {
			crow := c[i*ldc : i*ldc+n]
			for j := range crow {
				brow := b[j*ldb : j*ldb+k]
				var s float32
				if transA {
					for p, bv := range brow {
						s += a[p*lda+i] * bv
					}
				} else {
					arow := a[i*lda : i*lda+k]
					for p, bv := range brow {
						s += arow[p] * bv
					}
				}
				crow[j] += alpha * s
			}
		}
		return
	}
	i := 0
	for ; i+4 <= m; i += 4 {
		c0 := c[i*ldc : i*ldc+n]
		c1 := c[(i+1)*ldc : (i+1)*ldc+n]
		c2 := c[(i+2)*ldc : (i+2)*ldc+n]
		c3 := c[(i+3)*ldc : (i+3)*ldc+n]
		for p := 0; p < k; p++ {
			a0, a1, a2, a3 := at(i, p), at(i+1, p), at(i+2, p), at(i+3, p)
			brow := b[p*ldb : p*ldb+n]
			c0, c1, c2, c3 := c0[:len(brow)], c1[:len(brow)], c2[:len(brow)], c3[:len(brow)]
			for j, bv := range brow {
				c0[j] += a0 * bv
				c1[j] += a1 * bv
				c2[j] += a2 * bv
				c3[j] += a3 * bv
			}
		}
	}
	for ; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		for p := 0; p < k; p++ {
			av := at(i, p)
			brow := b[p*ldb : p*ldb+n]
			crow := crow[:len(brow)]
			for j, bv := range brow {
				crow[j] += av * bv
			}
		}
	}
}
