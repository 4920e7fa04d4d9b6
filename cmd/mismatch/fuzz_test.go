package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/study"
)

// FuzzConfig: any YAML file and override give a valid config or an error.
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
			c.Validate()
		}
		s, _ := study.Preset("fast", study.LikelihoodReward, "pointmass")
		if loadConfig(&s, p, kv) == nil {
			s.Validate()
		}
	})
}
