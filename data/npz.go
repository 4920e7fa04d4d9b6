package data

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// The .npz keys of a buffer: mbrl-lib's replay-buffer names.
const (
	KeyObs        = "obs"
	KeyAction     = "action"
	KeyNextObs    = "next_obs"
	KeyReward     = "reward"
	KeyTerminated = "terminated"
	KeyTruncated  = "truncated"
	// keyDone is the single flag of older mbrl-lib files, read as
	// terminated when the newer keys are absent.
	keyDone = "done"
)

// This file implements the numpy .npy/.npz formats itself rather than
// through github.com/sbinet/npyio: that library's header parser slices at
// unchecked offsets (a header with keys in another order, or without its
// newline, panics) and allocates header lengths taken from the file, which
// a reader of user files cannot accept. Here every length is checked
// against the bytes actually present before anything is allocated.

// WriteNPZ atomically writes the buffer to path as an uncompressed .npz
// (as numpy.savez makes) with mbrl-lib's keys.
func (b *Buffer) WriteNPZ(path string) error {
	if err := b.Validate(); err != nil {
		return err
	}
	return safefile.Write(path, b.writeNPZ)
}

func (b *Buffer) writeNPZ(w io.Writer) error {
	zw := zip.NewWriter(w)
	n := b.Len()
	arrays := []struct {
		key   string
		shape []int
		data  any
	}{
		{KeyObs, []int{n, b.ObsDim}, b.Obs},
		{KeyAction, []int{n, b.ActDim}, b.Act},
		{KeyNextObs, []int{n, b.ObsDim}, b.Next},
		{KeyReward, []int{n}, b.Reward},
		{KeyTerminated, []int{n}, b.Terminated},
		{KeyTruncated, []int{n}, b.Truncated},
	}
	for _, a := range arrays {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: a.key + ".npy", Method: zip.Store})
		if err != nil {
			return err
		}
		if err := writeNPY(f, a.shape, a.data); err != nil {
			return fmt.Errorf("data: writing %s: %w", a.key, err)
		}
	}
	return zw.Close()
}

// writeNPY writes an array in .npy format version 1.0.
func writeNPY(w io.Writer, shape []int, data any) error {
	var descr string
	switch data.(type) {
	case []float32:
		descr = "<f4"
	case []bool:
		descr = "|b1"
	default:
		return fmt.Errorf("unsupported type %T", data)
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	hdr := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh)
	// Pad with spaces so the data starts on a 64-byte boundary; the
	// header ends with a newline.
	total := 10 + len(hdr) + 1
	hdr += strings.Repeat(" ", (64-total%64)%64) + "\n"
	var pre [10]byte
	copy(pre[:], "\x93NUMPY\x01\x00")
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(hdr)))
	if _, err := w.Write(pre[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	switch v := data.(type) {
	case []float32:
		buf := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		_, err := w.Write(buf)
		return err
	case []bool:
		buf := make([]byte, len(v))
		for i, x := range v {
			if x {
				buf[i] = 1
			}
		}
		_, err := w.Write(buf)
		return err
	}
	return nil
}

// ReadNPZ reads a buffer from an .npz file with mbrl-lib's keys. obs,
// action and next_obs must be 2-D and reward and the flags 1-D, all with
// one row per transition. Floating-point arrays may be float32 or float64
// (converted); flags are bool. Files from older mbrl-lib with a single
// "done" flag are read with done as terminated.
func ReadNPZ(path string) (*Buffer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := readNPZ(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func readNPZ(r io.ReaderAt, size int64) (*Buffer, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not an .npz (zip) file: %w", err)
	}
	files := map[string]*zip.File{}
	var keys []string
	for _, f := range zr.File {
		key := strings.TrimSuffix(f.Name, ".npy")
		files[key] = f
		keys = append(keys, key)
	}
	sort.Strings(keys)
	need := []string{KeyObs, KeyAction, KeyNextObs, KeyReward}
	for _, k := range need {
		if files[k] == nil {
			return nil, fmt.Errorf("missing array %q (has %s)", k, strings.Join(keys, ", "))
		}
	}
	obs, err := readArray(files[KeyObs], size, 2, kindFloat)
	if err != nil {
		return nil, err
	}
	n, od := obs.shape[0], obs.shape[1]
	act, err := readArray(files[KeyAction], size, 2, kindFloat)
	if err != nil {
		return nil, err
	}
	next, err := readArray(files[KeyNextObs], size, 2, kindFloat)
	if err != nil {
		return nil, err
	}
	rew, err := readArray(files[KeyReward], size, 1, kindFloat)
	if err != nil {
		return nil, err
	}
	var term, trunc *array
	switch {
	case files[KeyTerminated] != nil:
		if term, err = readArray(files[KeyTerminated], size, 1, kindBool); err != nil {
			return nil, err
		}
		if files[KeyTruncated] == nil {
			return nil, fmt.Errorf("has %q but not %q", KeyTerminated, KeyTruncated)
		}
		if trunc, err = readArray(files[KeyTruncated], size, 1, kindBool); err != nil {
			return nil, err
		}
	case files[keyDone] != nil:
		if term, err = readArray(files[keyDone], size, 1, kindBool); err != nil {
			return nil, err
		}
		trunc = &array{key: KeyTruncated, shape: []int{n}, bools: make([]bool, n)}
	default:
		return nil, fmt.Errorf("missing arrays %q and %q (or %q)", KeyTerminated, KeyTruncated, keyDone)
	}
	for _, a := range []*array{act, next, rew, term, trunc} {
		if a.shape[0] != n {
			return nil, fmt.Errorf("array %q has %d rows, %q has %d", a.key, a.shape[0], KeyObs, n)
		}
	}
	if next.shape[1] != od {
		return nil, fmt.Errorf("array %q is %d wide, %q is %d", KeyNextObs, next.shape[1], KeyObs, od)
	}
	b := &Buffer{ObsDim: od, ActDim: act.shape[1], Obs: obs.floats, Act: act.floats, Next: next.floats,
		Reward: rew.floats, Terminated: term.bools, Truncated: trunc.bools}
	if n > 0 && (od == 0 || b.ActDim == 0) {
		return nil, fmt.Errorf("zero-width observations or actions")
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

type kind int

const (
	kindFloat kind = iota
	kindBool
)

type array struct {
	key    string
	shape  []int
	floats []float32
	bools  []bool
}

// maxHeader bounds .npy header lengths; numpy's are well under 1 KB.
const maxHeader = 1 << 16

func readArray(f *zip.File, fileSize int64, ndim int, want kind) (*array, error) {
	key := strings.TrimSuffix(f.Name, ".npy")
	a, err := readNPY(f, fileSize, key, ndim, want)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", key, err)
	}
	return a, nil
}

func readNPY(f *zip.File, fileSize int64, key string, ndim int, want kind) (*array, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The entry's declared size bounds every allocation below. It is
	// itself bounded by the file: deflate expands at most 1032 times, and
	// a lying entry fails on the short read of its data.
	size := f.UncompressedSize64
	if f.CompressedSize64 > uint64(fileSize) || size > 1100*max(f.CompressedSize64, 64) {
		return nil, fmt.Errorf("zip entry declares %d bytes from %d compressed: corrupt", size, f.CompressedSize64)
	}
	var pre [10]byte
	if _, err := io.ReadFull(rc, pre[:8]); err != nil {
		return nil, fmt.Errorf("not an .npy array: %w", err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, errors.New("not an .npy array (bad magic)")
	}
	var hlen, hoff uint64
	switch pre[6] {
	case 1:
		if _, err := io.ReadFull(rc, pre[8:10]); err != nil {
			return nil, err
		}
		hlen, hoff = uint64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(rc, l[:]); err != nil {
			return nil, err
		}
		hlen, hoff = uint64(binary.LittleEndian.Uint32(l[:])), 12
	default:
		return nil, fmt.Errorf("unsupported .npy version %d.%d", pre[6], pre[7])
	}
	if hlen > maxHeader || hoff+hlen > size {
		return nil, fmt.Errorf(".npy header of %d bytes does not fit", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(rc, hdr); err != nil {
		return nil, fmt.Errorf("truncated .npy header: %w", err)
	}
	h, err := parseHeader(string(hdr))
	if err != nil {
		return nil, err
	}
	if h.fortran {
		return nil, errors.New("Fortran-ordered arrays are not supported; save with C order")
	}
	if len(h.shape) != ndim {
		return nil, fmt.Errorf("has %d dimensions %v, want %d", len(h.shape), h.shape, ndim)
	}
	var item uint64
	var k kind
	switch h.descr {
	case "<f4":
		item, k = 4, kindFloat
	case "<f8":
		item, k = 8, kindFloat
	case "|b1", "<b1", "b1", "?":
		item, k = 1, kindBool
	default:
		return nil, fmt.Errorf("has dtype %q, want %s", h.descr, map[kind]string{kindFloat: "float32 or float64 ('<f4', '<f8')", kindBool: "bool ('|b1')"}[want])
	}
	if k != want {
		return nil, fmt.Errorf("has dtype %q, want %s", h.descr, map[kind]string{kindFloat: "float32 or float64", kindBool: "bool"}[want])
	}
	count, limit := uint64(1), size/item
	for _, d := range h.shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", h.shape)
		}
		// Checked before multiplying, so the product cannot overflow.
		if count != 0 && uint64(d) > limit/count {
			return nil, fmt.Errorf("shape %v is larger than the file", h.shape)
		}
		count *= uint64(d)
	}
	if count*item != size-hoff-hlen {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes of data, the array holds %d", h.shape, h.descr, count*item, size-hoff-hlen)
	}
	raw := make([]byte, count*item)
	if _, err := io.ReadFull(rc, raw); err != nil {
		return nil, fmt.Errorf("truncated data: %w", err)
	}
	a := &array{key: key, shape: h.shape}
	switch {
	case k == kindBool:
		a.bools = make([]bool, count)
		for i, v := range raw {
			if v > 1 {
				return nil, fmt.Errorf("bool element %d holds %d", i, v)
			}
			a.bools[i] = v == 1
		}
	case item == 4:
		a.floats = make([]float32, count)
		for i := range a.floats {
			a.floats[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	default:
		a.floats = make([]float32, count)
		for i := range a.floats {
			a.floats[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	}
	return a, nil
}

type npyHeader struct {
	descr   string
	fortran bool
	shape   []int
}

// parseHeader reads the Python dict literal of an .npy header:
// {'descr': <str>, 'fortran_order': <bool>, 'shape': (<int>, ...)}, with
// its keys in any order.
func parseHeader(s string) (npyHeader, error) {
	var h npyHeader
	p := &lexer{s: strings.TrimRight(s, " \n\x00")}
	bad := func(what string) (npyHeader, error) {
		return npyHeader{}, fmt.Errorf("malformed .npy header %q: %s", clip(s), what)
	}
	if !p.eat('{') {
		return bad("want '{'")
	}
	seen := map[string]bool{}
	for !p.eat('}') {
		key, ok := p.str()
		if !ok || !p.eat(':') {
			return bad("want a quoted key and ':'")
		}
		switch key {
		case "descr":
			if h.descr, ok = p.str(); !ok {
				return bad("descr is not a string")
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
			default:
				return bad("fortran_order is not True or False")
			}
		case "shape":
			if !p.eat('(') {
				return bad("shape is not a tuple")
			}
			for !p.eat(')') {
				d, ok := p.int()
				if !ok {
					return bad("shape holds a non-integer")
				}
				h.shape = append(h.shape, d)
				if len(h.shape) > 32 {
					return bad("too many dimensions")
				}
				p.eat(',')
			}
		default:
			return bad("unknown key " + key)
		}
		seen[key] = true
		p.eat(',')
	}
	if !seen["descr"] || !seen["fortran_order"] || !seen["shape"] {
		return bad("missing descr, fortran_order or shape")
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type lexer struct {
	s string
	i int
}

func (p *lexer) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *lexer) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *lexer) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *lexer) str() (string, bool) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, true
}

func (p *lexer) int() (int, bool) {
	p.skip()
	j := p.i
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	if j == p.i || j-p.i > 15 {
		return 0, false
	}
	v, err := strconv.Atoi(p.s[p.i:j])
	p.i = j
	// numpy may write 'L' suffixes on Python 2 longs.
	if p.i < len(p.s) && p.s[p.i] == 'L' {
		p.i++
	}
	return v, err == nil
}

// encodeNPZ returns the buffer's .npz bytes (for tests and fuzzing).
func (b *Buffer) encodeNPZ() ([]byte, error) {
	var buf bytes.Buffer
	err := b.writeNPZ(&buf)
	return buf.Bytes(), err
}
