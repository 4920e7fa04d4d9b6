package dynamics

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/nn"
)

// numpy finds a python3 with numpy, or skips.
func numpy(t *testing.T) string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	t.Skip("numpy not installed")
	return ""
}

// mbrlForward is mbrl-lib's GaussianMLP forward pass written with numpy,
// reading the weights by their state-dict names from a safetensors file:
// it prints the means and log-variances of every member for the inputs.
const mbrlForward = `
import json, struct, sys, numpy as np
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8+n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8+n+s:8+n+e], dtype="<f4").reshape(v["shape"])
    return out
def forward(sd, x, silu, deterministic, out_size):
    i = 0
    while "hidden_layers.%d.0.weight" % i in sd:
        x = x @ sd["hidden_layers.%d.0.weight" % i] + sd["hidden_layers.%d.0.bias" % i]
        x = x / (1 + np.exp(-x)) if silu else np.maximum(x, 0)
        i += 1
    y = x @ sd["mean_and_logvar.weight"] + sd["mean_and_logvar.bias"]
    if deterministic:
        return y, None
    mean, lv = y[..., :out_size], y[..., out_size:]
    lv = sd["max_logvar"] - np.logaddexp(0, sd["max_logvar"] - lv)
    lv = sd["min_logvar"] + np.logaddexp(0, lv - sd["min_logvar"])
    return mean, lv
`

// TestMbrlLibReadsOurCheckpoints: a checkpoint's tensors carry mbrl-lib's
// GaussianMLP state-dict names and shapes, and its forward pass written
// with numpy from them (and the sidecar's normaliser) predicts what the
// model predicts.
func TestMbrlLibReadsOurCheckpoints(t *testing.T) {
	py := numpy(t)
	task := classic.PointMass // features are the observation: inputs [x, v, a]
	m, _ := New(task, Config{Class: PE, Members: 3, Hidden: []int{16, 16}, Activation: nn.Swish, LearnLogVarBounds: true}, 1)
	buf, _ := data.RandomEpisodes(task, 4, 2)
	train(t, m, buf, TrainConfig{LR: 3e-3, Epochs: 3, BatchSize: 32, Seed: 3})
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	const n = 5
	obs, act := buf.Obs[:n*2], buf.Act[:n]
	script := mbrlForward + `
sd = load(sys.argv[1])
sc = json.load(open(sys.argv[2]))
x = np.array(json.loads(sys.argv[3]), dtype=np.float32)
x = (x - np.array(sc["normalizer"]["mean"], dtype=np.float32)) / np.array(sc["normalizer"]["std"], dtype=np.float32)
E = sd["mean_and_logvar.weight"].shape[0]
mean, lv = forward(sd, np.broadcast_to(x, (E,) + x.shape), True, False, 2)
print(json.dumps({"names": sorted(sd), "mean": mean.tolist(), "logvar": lv.tolist()}))
`
	in := make([][]float32, n)
	for i := range in {
		in[i] = []float32{obs[2*i], obs[2*i+1], act[i]}
	}
	arg, _ := json.Marshal(in)
	out, err := exec.Command(py, "-c", script, path, SidecarPath(path), string(arg)).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	var got struct {
		Names  []string
		Mean   [][][]float64
		Logvar [][][]float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []string{"hidden_layers.0.0.bias", "hidden_layers.0.0.weight", "hidden_layers.1.0.bias", "hidden_layers.1.0.weight",
		"max_logvar", "mean_and_logvar.bias", "mean_and_logvar.weight", "min_logvar"}
	if len(got.Names) != len(want) {
		t.Fatalf("tensors %v, want %v", got.Names, want)
	}
	for i := range want {
		if got.Names[i] != want[i] {
			t.Fatalf("tensors %v, want %v", got.Names, want)
		}
	}
	compareMoments(t, m, obs, act, n, got.Mean, got.Logvar)
}

// compareMoments checks the model's mean changes and log-variances for n
// rows against numpy's, member by member.
func compareMoments(t *testing.T, m *Model, obs, act []float32, n int, mean, logvar [][][]float64) {
	t.Helper()
	E, od := m.Members(), m.ObsDim()
	eo, ea := make([]float32, E*n*od), make([]float32, E*n)
	for e := 0; e < E; e++ {
		copy(eo[e*n*od:], obs[:n*od])
		copy(ea[e*n:], act[:n])
	}
	p := m.NewPredictor(1)
	defer p.Close()
	mu, va := make([]float32, E*n*od), make([]float32, E*n*od)
	if err := p.Moments(mu, va, eo, ea, n, nil); err != nil {
		t.Fatal(err)
	}
	for e := 0; e < E; e++ {
		for i := 0; i < n; i++ {
			for j := 0; j < od; j++ {
				k := (e*n+i)*od + j
				if d := float64(mu[k]-eo[k]) - mean[e][i][j]; math.Abs(d) > 1e-4*(1+math.Abs(mean[e][i][j])) {
					t.Fatalf("member %d row %d dim %d: mean change %g here, %g in numpy", e, i, j, mu[k]-eo[k], mean[e][i][j])
				}
				if logvar != nil {
					if d := math.Log(float64(va[k])) - logvar[e][i][j]; math.Abs(d) > 1e-4*(1+math.Abs(logvar[e][i][j])) {
						t.Fatalf("member %d row %d dim %d: log-variance %g here, %g in numpy", e, i, j, math.Log(float64(va[k])), logvar[e][i][j])
					}
				}
			}
		}
	}
}

// TestLoadsMbrlLibWeights: weights named and shaped as an mbrl-lib
// GaussianMLP's state_dict, written by numpy as safetensors, with the
// short sidecar a user writes (format "mbrl-lib": the constructor's sizes,
// the activation, the normaliser), load as a model that predicts what
// mbrl-lib's forward pass predicts — for a probabilistic ensemble with
// SiLU and a deterministic one with ReLU.
func TestLoadsMbrlLibWeights(t *testing.T) {
	py := numpy(t)
	for _, c := range []struct {
		silu, deterministic bool
	}{{true, false}, {false, true}} {
		dir := t.TempDir()
		path := filepath.Join(dir, "mbrl.safetensors")
		script := mbrlForward + `
rng = np.random.default_rng(5)
E, L, H, In, Out = 3, 2, 16, 3, 2
silu, det = sys.argv[2] == "1", sys.argv[3] == "1"
sd = {}
dims = [In] + [H] * L
for i in range(L):
    sd["hidden_layers.%d.0.weight" % i] = rng.normal(0, 0.5, (E, dims[i], H)).astype(np.float32)
    sd["hidden_layers.%d.0.bias" % i] = rng.normal(0, 0.1, (E, 1, H)).astype(np.float32)
o = Out if det else 2 * Out
sd["mean_and_logvar.weight"] = rng.normal(0, 0.5, (E, H, o)).astype(np.float32)
sd["mean_and_logvar.bias"] = rng.normal(0, 0.1, (E, 1, o)).astype(np.float32)
if not det:
    sd["min_logvar"] = np.full((1, Out), -10, np.float32)
    sd["max_logvar"] = np.full((1, Out), 0.5, np.float32)
header, blobs, off = {}, [], 0
for k in sorted(sd):
    b = sd[k].tobytes()
    header[k] = {"dtype": "F32", "shape": list(sd[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
mean_n = rng.normal(0, 1, In).astype(np.float32); std_n = rng.uniform(0.5, 2, In).astype(np.float32)
json.dump({"format": "mbrl-lib", "task": "pointmass", "ensemble_size": E, "num_layers": L, "hid_size": H,
           "use_silu": silu, "deterministic": det, "normalizer": {"mean": mean_n.tolist(), "std": std_n.tolist()}},
          open(sys.argv[1][:-len(".safetensors")] + ".json", "w"))
x = rng.normal(0, 1, (5, In)).astype(np.float32)
mean, lv = forward(sd, np.broadcast_to((x - mean_n) / std_n, (E, 5, In)), silu, det, Out)
print(json.dumps({"x": x.tolist(), "mean": mean.tolist(), "logvar": None if lv is None else lv.tolist()}))
`
		flag := func(b bool) string { return map[bool]string{true: "1", false: "0"}[b] }
		out, err := exec.Command(py, "-c", script, path, flag(c.silu), flag(c.deterministic)).CombinedOutput()
		if err != nil {
			t.Fatalf("numpy: %v\n%s", err, out)
		}
		var got struct {
			X      [][]float32
			Mean   [][][]float64
			Logvar [][][]float64
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		m, err := Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]Class{true: DE, false: PE}[c.deterministic]; m.Config().Class != want || m.Members() != 3 || len(m.Config().Hidden) != 2 {
			t.Fatalf("loaded a %s of %d members, %v hidden", m.Config().Class, m.Members(), m.Config().Hidden)
		}
		var obs, act []float32
		for _, r := range got.X {
			obs, act = append(obs, r[0], r[1]), append(act, r[2])
		}
		compareMoments(t, m, obs, act, len(got.X), got.Mean, got.Logvar)
	}
	// A sidecar of mbrl-lib's format with nonsense is refused.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.json"), []byte(`{"format": "mbrl-lib", "task": "pointmass", "ensemble_size": 0, "num_layers": 2, "hid_size": 4}`), 0o644)
	os.WriteFile(filepath.Join(dir, "x.safetensors"), []byte("12345678"), 0o644)
	if _, err := Load(filepath.Join(dir, "x.safetensors"), nil); err == nil {
		t.Fatal("an mbrl-lib sidecar of ensemble size 0 was accepted")
	}
}
