package data

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/classic"
)

func sample(t *testing.T) *Buffer {
	t.Helper()
	b, err := RandomEpisodes(classic.Pendulum, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalBuffers(t *testing.T, a, b *Buffer) {
	t.Helper()
	if a.ObsDim != b.ObsDim || a.ActDim != b.ActDim || a.Len() != b.Len() {
		t.Fatalf("shapes differ: %d/%d×%d vs %d/%d×%d", a.ObsDim, a.ActDim, a.Len(), b.ObsDim, b.ActDim, b.Len())
	}
	for _, p := range [][2][]float32{{a.Obs, b.Obs}, {a.Act, b.Act}, {a.Next, b.Next}, {a.Reward, b.Reward}} {
		for i := range p[0] {
			if math.Float32bits(p[0][i]) != math.Float32bits(p[1][i]) {
				t.Fatalf("value %d differs: %v vs %v", i, p[0][i], p[1][i])
			}
		}
	}
	for i := range a.Terminated {
		if a.Terminated[i] != b.Terminated[i] || a.Truncated[i] != b.Truncated[i] {
			t.Fatalf("flags of %d differ", i)
		}
	}
}

func TestNPZRoundTrip(t *testing.T) {
	b := sample(t)
	p := filepath.Join(t.TempDir(), "d.npz")
	if err := b.WriteNPZ(p); err != nil {
		t.Fatal(err)
	}
	r, err := ReadNPZ(p)
	if err != nil {
		t.Fatal(err)
	}
	equalBuffers(t, b, r)
	if got := len(r.Episodes()); got != 3 {
		t.Fatalf("%d episodes read back, want 3", got)
	}
}

// The fixtures were written by numpy 1.24 (np.savez and np.savez_compressed)
// with mbrl-lib's keys; mbrl_lib.txt holds their values as numpy printed them.
func TestReadsNumpyFiles(t *testing.T) {
	b, err := ReadNPZ("testdata/mbrl_lib.npz")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile("testdata/mbrl_lib.txt")
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	for li, got := range [][]float32{b.Obs, b.Act, b.Next, b.Reward} {
		fields := strings.Fields(lines[li])
		if len(fields) != len(got) {
			t.Fatalf("line %d: %d values, buffer has %d", li, len(fields), len(got))
		}
		for i, f := range fields {
			want, _ := strconv.ParseFloat(f, 64)
			if got[i] != float32(want) {
				t.Fatalf("line %d value %d: %v, numpy %v", li, i, got[i], want)
			}
		}
	}
	if !b.Terminated[2] || !b.Truncated[4] || b.Terminated[4] || b.Truncated[2] {
		t.Fatalf("flags %v %v", b.Terminated, b.Truncated)
	}
	c, err := ReadNPZ("testdata/compressed_done.npz")
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 5 || !c.Terminated[2] || c.Truncated[4] {
		t.Fatalf("compressed file with done: %d rows, flags %v %v", c.Len(), c.Terminated, c.Truncated)
	}
}

// When numpy is installed, it must read what we write.
func TestNumpyReadsOurFiles(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import numpy").Run() != nil {
		py = "/usr/bin/python3"
		if exec.Command(py, "-c", "import numpy").Run() != nil {
			t.Skip("numpy not installed")
		}
	}
	b := sample(t)
	p := filepath.Join(t.TempDir(), "d.npz")
	if err := b.WriteNPZ(p); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `import sys, json, numpy as np
d = np.load(sys.argv[1])
print(json.dumps({k: {"dtype": str(d[k].dtype), "shape": list(d[k].shape), "values": d[k].ravel().tolist()} for k in d.files}))`, p).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	var got map[string]struct {
		Dtype  string
		Shape  []int
		Values []any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("numpy's output: %v\n%s", err, out)
	}
	floats := map[string][]float32{KeyObs: b.Obs, KeyAction: b.Act, KeyNextObs: b.Next, KeyReward: b.Reward}
	bools := map[string][]bool{KeyTerminated: b.Terminated, KeyTruncated: b.Truncated}
	if len(got) != len(floats)+len(bools) {
		t.Fatalf("numpy found arrays %v", slices.Collect(maps.Keys(got)))
	}
	for k, want := range floats {
		a := got[k]
		if a.Dtype != "float32" || len(a.Values) != len(want) {
			t.Fatalf("%s: numpy read %s of %d values, want float32 of %d", k, a.Dtype, len(a.Values), len(want))
		}
		for i, v := range a.Values {
			// float32 → Python float is exact, and so is JSON's shortest
			// float64 form: the values must be equal bit for bit.
			if f, ok := v.(float64); !ok || float32(f) != want[i] || float64(float32(f)) != f {
				t.Fatalf("%s[%d]: numpy read %v, we wrote %v", k, i, v, want[i])
			}
		}
	}
	for k, want := range bools {
		a := got[k]
		if a.Dtype != "bool" || len(a.Values) != len(want) || len(a.Shape) != 1 {
			t.Fatalf("%s: numpy read %s %v", k, a.Dtype, a.Shape)
		}
		for i, v := range a.Values {
			if v != want[i] {
				t.Fatalf("%s[%d]: numpy read %v, we wrote %v", k, i, v, want[i])
			}
		}
	}
	if s := got[KeyObs].Shape; len(s) != 2 || s[0] != b.Len() || s[1] != b.ObsDim {
		t.Fatalf("obs shape %v", s)
	}
}

// TestReadRefusesLyingShapesBeforeAllocating: an obs array that declares
// 10⁸ × 4 floats (1.6 GB) in a file of about 1.5 MB — a zip entry may
// claim 1100 times its compressed size — beside arrays of 10 rows is
// refused on its header, without allocating its data.
func TestReadRefusesLyingShapesBeforeAllocating(t *testing.T) {
	good := sample(t)
	raw, err := good.encodeNPZ()
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name == "obs.npy" {
			continue
		}
		rc, _ := f.Open()
		w, _ := zw.Create(f.Name)
		io.Copy(w, rc)
		rc.Close()
	}
	const rows, width = 100_000_000, 4
	head := npyBytes(t, fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, width), nil)
	var deflated bytes.Buffer
	fw, _ := flate.NewWriter(&deflated, flate.BestSpeed)
	fw.Write(head)
	noise := make([]byte, 1_500_000) // incompressible, so the entry is large enough to claim 1.6 GB
	src := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(src.Uint32())
	}
	fw.Write(noise)
	fw.Close()
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "obs.npy", Method: zip.Deflate, CompressedSize64: uint64(deflated.Len()),
		UncompressedSize64: uint64(len(head)) + rows*width*4})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(deflated.Bytes())
	zw.Close()
	p := filepath.Join(t.TempDir(), "lying.npz")
	os.WriteFile(p, buf.Bytes(), 0o644)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadNPZ(p)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "rows") {
		t.Fatalf("error %v, want the rows that disagree", err)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 64<<20 {
		t.Fatalf("allocated %d MB before refusing the file", a>>20)
	}
}

// writeRaw builds an .npz from raw .npy entries, for malformed files.
func writeRaw(t *testing.T, entries map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range entries {
		w, _ := zw.Create(name)
		w.Write(data)
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "bad.npz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func npyBytes(t *testing.T, header string, data []byte) []byte {
	t.Helper()
	h := header + strings.Repeat(" ", 5) + "\n"
	out := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	out = append(out, h...)
	return append(out, data...)
}

func TestReadRejectsBadFiles(t *testing.T) {
	good := sample(t)
	raw, err := good.encodeNPZ()
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	entries := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		entries[f.Name] = b.Bytes()
	}
	with := func(name string, data []byte) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range entries {
			m[k] = v
		}
		if data == nil {
			delete(m, name)
		} else {
			m[name] = data
		}
		return m
	}
	cases := []struct {
		name    string
		entries map[string][]byte
		want    string
	}{
		{"missing obs", with("obs.npy", nil), `missing array "obs"`},
		{"int dtype", with("reward.npy", npyBytes(t, "{'descr': '<i4', 'fortran_order': False, 'shape': (600,), }", make([]byte, 2400))), `dtype "<i4"`},
		{"float flags", with("terminated.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (600,), }", make([]byte, 2400))), "want bool"},
		{"fortran", with("obs.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': True, 'shape': (600, 3), }", make([]byte, 7200))), "Fortran"},
		{"next_obs width", with("next_obs.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (600, 2), }", make([]byte, 4800))), `"next_obs" is 2 wide, "obs" is 3`},
		{"wrong rows", with("reward.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (599,), }", make([]byte, 2396))), "599 rows"},
		{"short data", with("reward.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (600,), }", make([]byte, 100))), "larger than the file"},
		{"extra data", with("reward.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (600,), }", make([]byte, 2404))), "needs 2400 bytes"},
		{"huge shape", with("reward.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999,), }", make([]byte, 8))), "larger than the file"},
		{"bad header", with("reward.npy", npyBytes(t, "{'descr': '<f4', 'shape': (600,)", make([]byte, 2400))), "malformed"},
		{"keys reordered", with("reward.npy", npyBytes(t, "{'shape': (600,), 'fortran_order': False, 'descr': '<f4', }", make([]byte, 2400))), ""},
		{"bad magic", with("reward.npy", []byte("hello world, not an array")), "magic"},
		{"NaN", with("reward.npy", npyBytes(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (600,), }", append([]byte{0, 0, 0xc0, 0x7f}, make([]byte, 2396)...))), "NaN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadNPZ(writeRaw(t, c.entries))
			if c.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "trunc.npz")
	os.WriteFile(p, raw[:len(raw)/2], 0o644)
	if _, err := ReadNPZ(p); err == nil {
		t.Fatal("a truncated file was read")
	}
	if _, err := ReadNPZ(filepath.Join(t.TempDir(), "none.npz")); err == nil {
		t.Fatal("a missing file was read")
	}
}

func TestEpisodesAndReturns(t *testing.T) {
	b := sample(t)
	eps := b.Episodes()
	if len(eps) != 3 || eps[0] != (Episode{0, 200}) || eps[2] != (Episode{400, 600}) {
		t.Fatalf("episodes %v", eps)
	}
	rets := b.EpisodeReturns()
	var sum float64
	for _, r := range b.Reward[:200] {
		sum += float64(r)
	}
	if math.Abs(rets[0]-sum) > 1e-9 {
		t.Fatalf("first return %g, want %g", rets[0], sum)
	}
	// Consecutive transitions chain within an episode.
	for i := 1; i < 200; i++ {
		for j := 0; j < b.ObsDim; j++ {
			if b.Obs[i*b.ObsDim+j] != b.Next[(i-1)*b.ObsDim+j] {
				t.Fatalf("transition %d does not start where %d ended", i, i-1)
			}
		}
	}
	sub := b.Subset([]int{5, 2})
	if sub.Len() != 2 || sub.Reward[0] != b.Reward[5] || sub.Obs[sub.ObsDim] != b.Obs[2*b.ObsDim] {
		t.Fatal("Subset picked the wrong transitions")
	}
}

func TestGridAndUniform(t *testing.T) {
	box, _ := env.NewBox([]float32{-1, -2}, []float32{1, 2})
	g, err := Grid(context.Background(), classic.PointMass, box, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 27 {
		t.Fatalf("grid of 3 points over 2 state and 1 action dimensions has %d transitions, want 27", g.Len())
	}
	seen := map[[3]float32]bool{}
	for i := 0; i < g.Len(); i++ {
		p := [3]float32{g.Obs[2*i], g.Obs[2*i+1], g.Act[i]}
		seen[p] = true
		for j, v := range p {
			if v != -1 && v != 0 && v != 1 && v != -2 && v != 2 {
				t.Fatalf("grid value %v in dimension %d is not a grid point", v, j)
			}
		}
	}
	if len(seen) != 27 {
		t.Fatalf("%d distinct grid points, want 27", len(seen))
	}
	// The recorded rewards are the task's.
	r := make([]float32, g.Len())
	classic.PointMass.Reward(r, g.Obs, g.Act, g.Next)
	for i := range r {
		if math.Abs(float64(r[i]-g.Reward[i])) > 1e-5 {
			t.Fatalf("transition %d reward %g, task says %g", i, g.Reward[i], r[i])
		}
	}
	u, err := Uniform(context.Background(), classic.PointMass, box, 500, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 500 || len(u.Episodes()) != 500 {
		t.Fatalf("uniform: %d transitions in %d episodes, want 500 one-step episodes", u.Len(), len(u.Episodes()))
	}
	for i := 0; i < u.Len(); i++ {
		if !box.Contains(u.Obs[2*i:2*i+2]) || u.Act[i] < -1 || u.Act[i] > 1 {
			t.Fatalf("sample %d outside the box", i)
		}
	}
	u2, _ := Uniform(context.Background(), classic.PointMass, box, 500, 3, nil)
	equalBuffers(t, u, u2)
	if _, err := Grid(context.Background(), classic.PointMass, env.Uniform(3, -1, 1), 3, nil); err == nil {
		t.Fatal("a box of the wrong dimension was accepted")
	}
	if _, err := Uniform(context.Background(), classic.PointMass, env.Unbounded(2), 5, 1, nil); err == nil {
		t.Fatal("an unbounded box was accepted")
	}
}
