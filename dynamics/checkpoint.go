package dynamics

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/nn"
)

// A checkpoint is two files: the weights in the safetensors format, named
// and shaped as mbrl-lib's GaussianMLP names them in its state_dict —
// hidden_layers.<i>.0.weight [members, in, out] and hidden_layers.<i>.0.bias
// [members, 1, out] for the hidden layers, mean_and_logvar.weight and .bias
// for the output layer (means, then raw log-variances), min_logvar and
// max_logvar [1, obs dim] for probabilistic models — so that
// model.load_state_dict(safetensors.torch.load_file(path)) works as it is;
// and a JSON sidecar of the same name with the task, the architecture, the
// input normaliser (mean and std of the model's inputs: the preprocessed
// observation, then the action — mbrl-lib's Normalizer holds the same two
// vectors), the elites and the weights' SHA-256. Checkpoints written
// before 2026-12 name the layers layers.<i>.weight and .bias; they load
// too. A sidecar of format "mbrl-lib" (see mbrlSidecar) describes weights
// saved from an mbrl-lib model.

const (
	checkpointFormat  = "mismatch.dynamics"
	checkpointVersion = 1
	// maxCheckpoint bounds the weights file read into memory.
	maxCheckpoint = 1 << 31
)

type sidecar struct {
	Format     string      `json:"format"`
	Version    int         `json:"version"`
	Task       string      `json:"task"`
	ObsDim     int         `json:"obs_dim"`
	ActDim     int         `json:"act_dim"`
	FeatureDim int         `json:"feature_dim"`
	Absolute   []int       `json:"absolute_targets"`
	Model      modelConfig `json:"model"`
	Normalizer struct {
		Mean []float32 `json:"mean"`
		Std  []float32 `json:"std"`
	} `json:"normalizer"`
	Elites        []int  `json:"elites"`
	WeightsFile   string `json:"weights_file"`
	WeightsSHA256 string `json:"weights_sha256"`
}

type modelConfig struct {
	Class             string    `json:"class"`
	Probabilistic     bool      `json:"probabilistic"`
	Members           int       `json:"members"`
	Hidden            []int     `json:"hidden"`
	Activation        string    `json:"activation"`
	LearnLogVarBounds bool      `json:"learn_logvar_bounds"`
	WeightDecay       []float32 `json:"weight_decay"`
}

// SidecarPath returns the JSON sidecar's path for a weights path.
func SidecarPath(weights string) string {
	return strings.TrimSuffix(weights, filepath.Ext(weights)) + ".json"
}

type tensor struct {
	name  string
	shape []int
	data  []float32
}

// tensors lists the model's parameters under mbrl-lib's names, or under
// the names of checkpoints written before 2026-12 (legacy).
func (m *Model) tensors(legacy bool) []tensor {
	var ts []tensor
	E := m.cfg.Members
	for i, l := range m.Net.Layers {
		w, b := fmt.Sprintf("hidden_layers.%d.0.weight", i), fmt.Sprintf("hidden_layers.%d.0.bias", i)
		switch {
		case legacy:
			w, b = fmt.Sprintf("layers.%d.weight", i), fmt.Sprintf("layers.%d.bias", i)
		case i == len(m.Net.Layers)-1:
			w, b = "mean_and_logvar.weight", "mean_and_logvar.bias"
		}
		ts = append(ts, tensor{w, []int{E, l.In, l.Out}, l.W}, tensor{b, []int{E, 1, l.Out}, l.B})
	}
	if m.Head != nil {
		ts = append(ts,
			tensor{"max_logvar", []int{1, m.obsDim}, m.Head.MaxLogVar},
			tensor{"min_logvar", []int{1, m.obsDim}, m.Head.MinLogVar})
	}
	return ts
}

// Save writes the model to path (conventionally *.safetensors) and its
// sidecar, each atomically, the weights first.
func (m *Model) Save(path string) error {
	weights, sc, err := m.encode(filepath.Base(path))
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	if err := safefile.WriteBytes(path, weights); err != nil {
		return err
	}
	return safefile.WriteBytes(SidecarPath(path), append(js, '\n'))
}

// Digest is the SHA-256, in hex, of everything Save writes but the weights
// file's name: two models with the same digest predict the same.
func (m *Model) Digest() (string, error) {
	_, sc, err := m.encode("")
	if err != nil {
		return "", err
	}
	js, err := json.Marshal(sc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(js) // the sidecar holds the weights' digest
	return hex.EncodeToString(sum[:]), nil
}

// encode returns the weights file Save writes and its sidecar, naming the
// weights file name.
func (m *Model) encode(name string) ([]byte, sidecar, error) {
	ts := m.tensors(false)
	header := map[string]any{"__metadata__": map[string]string{"format": "pt", "producer": "mismatch"}}
	off := 0
	for _, t := range ts {
		n := 4 * len(t.data)
		header[t.name] = map[string]any{"dtype": "F32", "shape": t.shape, "data_offsets": []int{off, off + n}}
		off += n
	}
	var sc sidecar
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, sc, err
	}
	// Pad the header with spaces so the data is 8-byte aligned.
	hj = append(hj, bytes.Repeat([]byte(" "), (8-len(hj)%8)%8)...)
	var buf bytes.Buffer
	buf.Grow(8 + len(hj) + off)
	binary.Write(&buf, binary.LittleEndian, uint64(len(hj)))
	buf.Write(hj)
	var b4 [4]byte
	for _, t := range ts {
		for _, v := range t.data {
			binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
			buf.Write(b4[:])
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	sc.Format, sc.Version = checkpointFormat, checkpointVersion
	sc.Task = m.spec.Name()
	sc.ObsDim, sc.ActDim, sc.FeatureDim = m.obsDim, m.actDim, m.featDim
	sc.Absolute = m.spec.AbsoluteTargets()
	if sc.Absolute == nil {
		sc.Absolute = []int{}
	}
	c := m.cfg
	sc.Model = modelConfig{Class: string(c.Class), Probabilistic: c.Class.Probabilistic(), Members: c.Members, Hidden: c.Hidden,
		Activation: c.Activation.String(), LearnLogVarBounds: c.LearnLogVarBounds, WeightDecay: c.WeightDecay}
	if sc.Model.Hidden == nil {
		sc.Model.Hidden = []int{}
	}
	if sc.Model.WeightDecay == nil {
		sc.Model.WeightDecay = []float32{}
	}
	sc.Normalizer.Mean, sc.Normalizer.Std = m.InMean, m.InStd
	sc.Elites = m.Elites
	sc.WeightsFile = name
	sc.WeightsSHA256 = hex.EncodeToString(sum[:])
	return buf.Bytes(), sc, nil
}

// Load reads a model saved by Save. With a nil spec it looks the task up
// by the name the sidecar records (the task's package must be imported).
// Every inconsistency — a missing or altered file, a weights file that does
// not match its sidecar, another shape than the task or config implies,
// non-finite values — is an error naming the file and what is wrong.
func Load(path string, spec Spec) (*Model, error) {
	m, err := load(path, spec)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return m, nil
}

func load(path string, spec Spec) (*Model, error) {
	scPath := SidecarPath(path)
	raw, err := readBounded(scPath, 1<<24)
	if err != nil {
		return nil, err
	}
	var sc sidecar
	var peek struct {
		Format string `json:"format"`
	}
	json.Unmarshal(raw, &peek)
	foreign := peek.Format == mbrlFormat
	if foreign {
		if sc, spec, err = fromMBRL(raw, spec); err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", scPath, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", scPath, err)
		}
	}
	if !foreign && (sc.Format != checkpointFormat || sc.Version != checkpointVersion) {
		return nil, fmt.Errorf("sidecar %s: format %q version %d, want %q version %d", scPath, sc.Format, sc.Version, checkpointFormat, checkpointVersion)
	}
	if spec == nil {
		t, err := env.Lookup(sc.Task)
		if err != nil {
			return nil, err
		}
		spec = t
	} else if spec.Name() != sc.Task {
		return nil, fmt.Errorf("saved for task %q, loading for %q", sc.Task, spec.Name())
	}
	act, err := nn.ParseActivation(sc.Model.Activation)
	if err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", scPath, err)
	}
	class := D
	if sc.Model.Probabilistic {
		class = P
	}
	if sc.Model.Members > 1 {
		class += "E"
	}
	if sc.Model.Class != string(class) {
		return nil, fmt.Errorf("sidecar %s: class %q, but %d members that are probabilistic=%t make %s", scPath, sc.Model.Class, sc.Model.Members, sc.Model.Probabilistic, class)
	}
	cfg := Config{Class: class, Members: sc.Model.Members, Hidden: sc.Model.Hidden,
		Activation: act, LearnLogVarBounds: sc.Model.LearnLogVarBounds, WeightDecay: sc.Model.WeightDecay}
	for i, h := range cfg.Hidden {
		if h < 1 || h > 1<<16 {
			return nil, fmt.Errorf("sidecar %s: hidden layer %d has width %d", scPath, i, h)
		}
	}
	if cfg.Members > 1<<10 || len(cfg.Hidden) > 64 {
		return nil, fmt.Errorf("sidecar %s: implausible model (%d members, %d layers)", scPath, cfg.Members, len(cfg.Hidden))
	}
	m, err := New(spec, cfg, 0)
	if err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", scPath, err)
	}
	if sc.ObsDim != m.obsDim || sc.ActDim != m.actDim || sc.FeatureDim != m.featDim {
		return nil, fmt.Errorf("saved with observation/action/feature widths %d/%d/%d, the task has %d/%d/%d", sc.ObsDim, sc.ActDim, sc.FeatureDim, m.obsDim, m.actDim, m.featDim)
	}
	if !slices.Equal(sc.Absolute, append([]int{}, spec.AbsoluteTargets()...)) {
		return nil, fmt.Errorf("saved with absolute targets %v, the task has %v", sc.Absolute, spec.AbsoluteTargets())
	}
	if len(sc.Normalizer.Mean) != m.InputDim() || len(sc.Normalizer.Std) != m.InputDim() {
		return nil, fmt.Errorf("normaliser has %d/%d values, the model takes %d inputs", len(sc.Normalizer.Mean), len(sc.Normalizer.Std), m.InputDim())
	}
	for i := range sc.Normalizer.Std {
		mu, sd := float64(sc.Normalizer.Mean[i]), float64(sc.Normalizer.Std[i])
		if math.IsNaN(mu) || math.IsInf(mu, 0) || !(sd > 0) || math.IsInf(sd, 0) {
			return nil, fmt.Errorf("normaliser input %d has mean %g and std %g", i, mu, sd)
		}
	}
	copy(m.InMean, sc.Normalizer.Mean)
	copy(m.InStd, sc.Normalizer.Std)
	seen := map[int]bool{}
	for _, e := range sc.Elites {
		if e < 0 || e >= cfg.Members || seen[e] {
			return nil, fmt.Errorf("elite %d is not a distinct member of %d", e, cfg.Members)
		}
		seen[e] = true
	}
	if len(sc.Elites) == 0 {
		return nil, errors.New("no elite members")
	}
	m.Elites = sc.Elites

	w, err := readBounded(path, maxCheckpoint)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(w)
	if !foreign && hex.EncodeToString(sum[:]) != sc.WeightsSHA256 {
		return nil, fmt.Errorf("weights do not match their sidecar's checksum (altered, truncated, or from another save)")
	}
	// Checkpoints written before 2026-12 name the layers layers.<i>.*.
	names, err := tensorNames(w)
	if err != nil {
		return nil, err
	}
	if err := readSafetensors(w, m.tensors(names["layers.0.weight"])); err != nil {
		return nil, err
	}
	return m, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// readSafetensors fills the expected tensors from a safetensors file,
// checking names, types, shapes and offsets.
func readSafetensors(b []byte, want []tensor) error {
	if len(b) < 8 {
		return errors.New("weights file shorter than its header length")
	}
	hl := binary.LittleEndian.Uint64(b[:8])
	if hl > uint64(len(b)-8) || hl > 1<<26 {
		return fmt.Errorf("weights header of %d bytes does not fit in a %d-byte file", hl, len(b))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &header); err != nil {
		return fmt.Errorf("weights header: %w", err)
	}
	body := b[8+hl:]
	names := map[string]bool{}
	for _, t := range want {
		names[t.name] = true
		rawT, ok := header[t.name]
		if !ok {
			return fmt.Errorf("weights lack tensor %q", t.name)
		}
		var info struct {
			Dtype   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(rawT, &info); err != nil {
			return fmt.Errorf("tensor %q: %w", t.name, err)
		}
		if info.Dtype != "F32" {
			return fmt.Errorf("tensor %q has dtype %s, want F32", t.name, info.Dtype)
		}
		if !slices.Equal(info.Shape, t.shape) {
			return fmt.Errorf("tensor %q has shape %v, the model needs %v", t.name, info.Shape, t.shape)
		}
		if len(info.Offsets) != 2 || info.Offsets[0] > info.Offsets[1] || info.Offsets[1] > uint64(len(body)) ||
			info.Offsets[1]-info.Offsets[0] != uint64(4*len(t.data)) {
			return fmt.Errorf("tensor %q has data offsets %v, out of the file's %d data bytes or not %d long", t.name, info.Offsets, len(body), 4*len(t.data))
		}
		src := body[info.Offsets[0]:info.Offsets[1]]
		for i := range t.data {
			v := math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q element %d is %g", t.name, i, v)
			}
			t.data[i] = v
		}
	}
	for k := range header {
		if k != "__metadata__" && !names[k] {
			return fmt.Errorf("weights hold tensor %q, which this model does not have", k)
		}
	}
	return nil
}

// tensorNames lists the tensors a safetensors file's header names.
func tensorNames(b []byte) (map[string]bool, error) {
	if len(b) < 8 {
		return nil, errors.New("weights file shorter than its header length")
	}
	hl := binary.LittleEndian.Uint64(b[:8])
	if hl > uint64(len(b)-8) || hl > 1<<26 {
		return nil, fmt.Errorf("weights header of %d bytes does not fit in a %d-byte file", hl, len(b))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &header); err != nil {
		return nil, fmt.Errorf("weights header: %w", err)
	}
	names := map[string]bool{}
	for k := range header {
		names[k] = true
	}
	return names, nil
}

// mbrlFormat marks a sidecar a user writes beside the weights of an
// mbrl-lib GaussianMLP (safetensors.torch.save_file(model.state_dict(),
// path)): the model's constructor arguments, its Normalizer's mean and
// std, the task, and optionally the elites.
const mbrlFormat = "mbrl-lib"

// mbrlSidecar describes weights saved from mbrl-lib. Its num_layers is
// the GaussianMLP argument: the number of hidden layers, each of hid_size
// units.
type mbrlSidecar struct {
	Format            string `json:"format"`
	Task              string `json:"task"`
	EnsembleSize      int    `json:"ensemble_size"`
	NumLayers         int    `json:"num_layers"`
	HidSize           int    `json:"hid_size"`
	UseSilu           bool   `json:"use_silu"`
	Deterministic     bool   `json:"deterministic"`
	LearnLogVarBounds bool   `json:"learn_logvar_bounds"`
	Normalizer        struct {
		Mean []float32 `json:"mean"`
		Std  []float32 `json:"std"`
	} `json:"normalizer"`
	Elites []int `json:"elites"`
}

// fromMBRL reads an mbrl-lib sidecar into this package's form.
func fromMBRL(raw []byte, spec Spec) (sidecar, Spec, error) {
	var u mbrlSidecar
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return sidecar{}, nil, err
	}
	if spec == nil {
		t, err := env.Lookup(u.Task)
		if err != nil {
			return sidecar{}, nil, err
		}
		spec = t
	}
	if u.EnsembleSize < 1 || u.NumLayers < 1 || u.HidSize < 1 || u.NumLayers > 64 || u.HidSize > 1<<16 || u.EnsembleSize > 1<<10 {
		return sidecar{}, nil, fmt.Errorf("ensemble_size %d, num_layers %d and hid_size %d: want positive sizes", u.EnsembleSize, u.NumLayers, u.HidSize)
	}
	var sc sidecar
	sc.Format, sc.Version, sc.Task = checkpointFormat, checkpointVersion, u.Task
	sc.ObsDim, sc.ActDim, sc.FeatureDim = spec.ObservationSpace().Dim(), spec.ActionSpace().Dim(), spec.InputDim()
	sc.Absolute = append([]int{}, spec.AbsoluteTargets()...)
	class := "P"
	if u.Deterministic {
		class = "D"
	}
	if u.EnsembleSize > 1 {
		class += "E"
	}
	sc.Model = modelConfig{Class: class, Probabilistic: !u.Deterministic, Members: u.EnsembleSize, Activation: "relu", LearnLogVarBounds: u.LearnLogVarBounds}
	if u.UseSilu {
		sc.Model.Activation = "swish"
	}
	for range u.NumLayers {
		sc.Model.Hidden = append(sc.Model.Hidden, u.HidSize)
	}
	sc.Normalizer.Mean, sc.Normalizer.Std = u.Normalizer.Mean, u.Normalizer.Std
	sc.Elites = u.Elites
	if len(sc.Elites) == 0 {
		for e := range u.EnsembleSize {
			sc.Elites = append(sc.Elites, e)
		}
	}
	return sc, spec, nil
}
