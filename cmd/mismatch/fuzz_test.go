package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/study"
)

// FuzzConfig: any YAML file and override give a valid config or an error;
// a config accepted, written out and loaded again is the same config.
func FuzzConfig(f *testing.F) {
	f.Add("seed: 2\nplanner:\n  population: 10\n", "model.hidden=[4,4]")
	f.Add("datasets:\n  - {name: x, kind: grid, points: 3}\n", "datasets.x.points=2")
	f.Add("{", "a=b")
	f.Fuzz(func(t *testing.T, file, override string) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(p, []byte(file), 0o644)
		var kv []string
		if override != "" {
			kv = strings.Split(override, " ")
		}
		c, _ := pets.Preset("fast", "pointmass")
		if loadConfig(&c, p, kv) == nil {
			again, _ := pets.Preset("fast", "pointmass")
			roundTrip(t, &c, &again)
		}
		s, _ := study.Preset("fast", study.LikelihoodReward, "pointmass")
		if loadConfig(&s, p, kv) == nil {
			again, _ := study.Preset("fast", study.LikelihoodReward, "pointmass")
			roundTrip(t, &s, &again)
		}
	})
}

// roundTrip writes an accepted config out, loads it into fresh, and
// requires it valid and written out the same.
func roundTrip(t *testing.T, c, fresh any) {
	t.Helper()
	if v, ok := c.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("an accepted config is invalid: %v", err)
		}
	}
	first, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "written.yaml")
	os.WriteFile(p, first, 0o644)
	if err := loadConfig(fresh, p, nil); err != nil {
		t.Fatalf("a written config does not load: %v\n%s", err, first)
	}
	second, _ := yaml.Marshal(fresh)
	if !bytes.Equal(first, second) {
		t.Fatalf("config does not round-trip:\n%s\nthen\n%s", first, second)
	}
}
