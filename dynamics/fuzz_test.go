package dynamics

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mismatch-rl/mismatch/nn"
)

// FuzzLoad: any weights and sidecar bytes load as a model or give an error.
func FuzzLoad(f *testing.F) {
	sp := spec{name: "lg", od: 2, ad: 1}
	m, _ := New(sp, Config{Class: PE, Members: 2, Hidden: []int{3}, Activation: nn.Swish}, 1)
	dir := f.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := m.Save(path); err != nil {
		f.Fatal(err)
	}
	w, _ := os.ReadFile(path)
	s, _ := os.ReadFile(SidecarPath(path))
	f.Add(w, s)
	f.Fuzz(func(t *testing.T, weights, side []byte) {
		d := t.TempDir()
		p := filepath.Join(d, "m.safetensors")
		os.WriteFile(p, weights, 0o644)
		os.WriteFile(SidecarPath(p), side, 0o644)
		if m, err := Load(p, sp); err == nil {
			// A loaded model must be usable.
			pr := m.NewPredictor(1)
			defer pr.Close()
			out := make([]float32, m.Members()*2)
			obs := make([]float32, m.Members()*2)
			act := make([]float32, m.Members())
			if err := pr.Next(out, obs, act, 1, nil, nil); err != nil {
				t.Fatalf("loaded model fails to predict: %v", err)
			}
		}
	})
}

// FuzzReadSafetensors exercises the weights parser alone, past the
// checksum that guards it in Load.
func FuzzReadSafetensors(f *testing.F) {
	sp := spec{name: "lg", od: 2, ad: 1}
	m, _ := New(sp, Config{Class: D, Members: 1, Hidden: []int{2}, Activation: nn.Tanh}, 1)
	dir := f.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	m.Save(path)
	w, _ := os.ReadFile(path)
	f.Add(w)
	f.Fuzz(func(t *testing.T, weights []byte) {
		readSafetensors(weights, m.Clone().tensors(false))
	})
}
