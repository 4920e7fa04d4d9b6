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

	"github.com/mismatch-rl/mismatch/internal/memory"
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

// NPZShape reads the array headers of an .npz file of transitions, not
// their data, and returns the number of transitions and the widths of
// observations and actions, after the checks ReadNPZ makes of the headers.
func NPZShape(path string) (n, obsDim, actDim int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	l, err := layout(f, st.Size())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return l.n, l.od, l.ad, nil
}

// npzLayout is what an .npz file's array headers declare.
type npzLayout struct {
	files     map[string]*zip.File
	heads     map[string]*npyInfo
	n, od, ad int
}

// layout reads and checks every array's header: shapes that disagree, or
// that declare more than this machine could hold, are refused before any
// array's data is allocated.
func layout(r io.ReaderAt, size int64) (*npzLayout, error) {
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
	var flags []string
	switch {
	case files[KeyTerminated] != nil:
		if files[KeyTruncated] == nil {
			return nil, fmt.Errorf("has %q but not %q", KeyTerminated, KeyTruncated)
		}
		flags = []string{KeyTerminated, KeyTruncated}
	case files[keyDone] != nil:
		flags = []string{keyDone}
	default:
		return nil, fmt.Errorf("missing arrays %q and %q (or %q)", KeyTerminated, KeyTruncated, keyDone)
	}
	heads := map[string]*npyInfo{}
	for _, k := range append(need, flags...) {
		ndim, want := 1, kindBool
		switch k {
		case KeyObs, KeyAction, KeyNextObs:
			ndim, want = 2, kindFloat
		case KeyReward:
			want = kindFloat
		}
		h, err := headArray(files[k], size, ndim, want)
		if err != nil {
			return nil, err
		}
		heads[k] = h
	}
	n, od, ad := heads[KeyObs].shape[0], heads[KeyObs].shape[1], heads[KeyAction].shape[1]
	for _, k := range append(need[1:], flags...) {
		if heads[k].shape[0] != n {
			return nil, fmt.Errorf("array %q has %d rows, %q has %d", k, heads[k].shape[0], KeyObs, n)
		}
	}
	if w := heads[KeyNextObs].shape[1]; w != od {
		return nil, fmt.Errorf("array %q is %d wide, %q is %d", KeyNextObs, w, KeyObs, od)
	}
	if n > 0 && (od == 0 || ad == 0) {
		return nil, fmt.Errorf("zero-width observations or actions")
	}
	if need, have := float64(n)*TransitionBytes(od, ad), memory.Machine(); have > 0 && need > have {
		return nil, fmt.Errorf("declares %d transitions, which need %s of memory; this machine has %s", n, memory.Format(need), memory.Format(have))
	}
	return &npzLayout{files: files, heads: heads, n: n, od: od, ad: ad}, nil
}

func readNPZ(r io.ReaderAt, size int64) (*Buffer, error) {
	l, err := layout(r, size)
	if err != nil {
		return nil, err
	}
	files, heads, n, od, ad := l.files, l.heads, l.n, l.od, l.ad
	arrays := map[string]*array{}
	for k, h := range heads {
		a, err := readArray(files[k], h)
		if err != nil {
			return nil, err
		}
		arrays[k] = a
	}
	term, trunc := arrays[KeyTerminated], arrays[KeyTruncated]
	if term == nil {
		term = arrays[keyDone]
		trunc = &array{key: KeyTruncated, shape: []int{n}, bools: make([]bool, n)}
	}
	b := &Buffer{ObsDim: od, ActDim: ad, Obs: arrays[KeyObs].floats, Act: arrays[KeyAction].floats, Next: arrays[KeyNextObs].floats,
		Reward: arrays[KeyReward].floats, Terminated: term.bools, Truncated: trunc.bools}
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

// npyInfo is what an .npy header says of its data.
type npyInfo struct {
	key   string
	shape []int
	item  uint64 // bytes per element
	kind  kind
	count uint64 // elements
	skip  uint64 // bytes before the data
}

// headArray reads and checks an array's header, not its data.
func headArray(f *zip.File, fileSize int64, ndim int, want kind) (*npyInfo, error) {
	key := strings.TrimSuffix(f.Name, ".npy")
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", key, err)
	}
	defer rc.Close()
	h, err := headNPY(rc, f, fileSize, ndim, want)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", key, err)
	}
	h.key = key
	return h, nil
}

// readArray reads the data of an array whose header h was checked.
func readArray(f *zip.File, h *npyInfo) (*array, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", h.key, err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, int64(h.skip)); err != nil {
		return nil, fmt.Errorf("array %q: %w", h.key, err)
	}
	a, err := readData(rc, h)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", h.key, err)
	}
	return a, nil
}

func headNPY(rc io.Reader, f *zip.File, fileSize int64, ndim int, want kind) (*npyInfo, error) {
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
	info := &npyInfo{shape: h.shape, skip: hoff + hlen}
	switch h.descr {
	case "<f4":
		info.item, info.kind = 4, kindFloat
	case "<f8":
		info.item, info.kind = 8, kindFloat
	case "|b1", "<b1", "b1", "?":
		info.item, info.kind = 1, kindBool
	default:
		return nil, fmt.Errorf("has dtype %q, want %s", h.descr, map[kind]string{kindFloat: "float32 or float64 ('<f4', '<f8')", kindBool: "bool ('|b1')"}[want])
	}
	if info.kind != want {
		return nil, fmt.Errorf("has dtype %q, want %s", h.descr, map[kind]string{kindFloat: "float32 or float64", kindBool: "bool"}[want])
	}
	count, limit := uint64(1), size/info.item
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
	if count*info.item != size-hoff-hlen {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes of data, the array holds %d", h.shape, h.descr, count*info.item, size-hoff-hlen)
	}
	info.count = count
	return info, nil
}

// readData reads an array's elements in blocks, converting as it goes, so
// that only the result is held whole.
func readData(rc io.Reader, h *npyInfo) (*array, error) {
	a := &array{key: h.key, shape: h.shape}
	if h.kind == kindBool {
		a.bools = make([]bool, h.count)
	} else {
		a.floats = make([]float32, h.count)
	}
	var block [1 << 16]byte
	per := uint64(len(block)) / h.item
	for i := uint64(0); i < h.count; i += per {
		k := min(per, h.count-i)
		raw := block[:k*h.item]
		if _, err := io.ReadFull(rc, raw); err != nil {
			return nil, fmt.Errorf("truncated data: %w", err)
		}
		switch {
		case h.kind == kindBool:
			for j, v := range raw {
				if v > 1 {
					return nil, fmt.Errorf("bool element %d holds %d", i+uint64(j), v)
				}
				a.bools[i+uint64(j)] = v == 1
			}
		case h.item == 4:
			for j := range k {
				a.floats[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		default:
			for j := range k {
				a.floats[i+j] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*j:])))
			}
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
