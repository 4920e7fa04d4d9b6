package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/study"
)

func preset(t *testing.T) pets.Config {
	t.Helper()
	c, err := pets.Preset("fast", "cartpole-swingup")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("seed: 9\nplanner:\n  population: 77\n  horizon: 12\nmodel:\n  hidden: [8, 8, 8]\n"), 0o644)
	c := preset(t)
	if err := loadConfig(&c, file, []string{"planner.horizon=20", "train.lr=0.005", "model.activation=tanh"}); err != nil {
		t.Fatal(err)
	}
	// File over preset, overrides over file; untouched fields keep the
	// preset's values.
	if c.Seed != 9 || c.Planner.Population != 77 || c.Planner.Horizon != 20 || c.Train.LR != 0.005 ||
		len(c.Model.Hidden) != 3 || c.Model.Activation != nn.Tanh || c.Planner.Elites != 15 || c.Train.Epochs != 20 {
		t.Fatalf("resolved config %+v", c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("bad%d.yaml", n))
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	cases := []struct {
		file      string
		overrides []string
		want      string
	}{
		{write("planner:\n  populaton: 3\n"), nil, "line 2 (planner.populaton): field populaton not found"},
		{write("seed: [1, 2\n"), nil, "did not find expected"},
		{write("- 1\n- 2\n"), nil, "cannot unmarshal !!seq"},
		{write("train:\n  epochs: many\n"), nil, "line 2 (train.epochs)"},
		{"", []string{"planner.populaton=3"}, `unknown key "planner.populaton"`},
		{"", []string{"planner.population=lots"}, `"lots" is not a valid int`},
		{"", []string{"model.hidden=12x"}, "not a valid []int"},
		{"", []string{"noequals"}, "want key=value"},
		{"", []string{"planner=3"}, "not a valid"},
		{filepath.Join(dir, "missing.yaml"), nil, "no such file"},
		// YAML truncates fractions and exponents into integers: refused.
		{"", []string{"seed=2.9"}, `seed: "2.9" is not an integer`},
		{"", []string{"planner.population=150.7"}, `planner.population: "150.7" is not an integer`},
		{"", []string{"trials=2.5"}, `trials: "2.5" is not an integer`},
		{"", []string{"planner.particles=1e8"}, `planner.particles: "1e8" is not an integer`},
		{"", []string{"model.hidden=[64,64.5]"}, `model.hidden[1]: "64.5" is not an integer`},
		{write("seed: 2.9\ntrials: 3\nplanner:\n  population: 1.5e2\n"), nil, `planner.population: "1.5e2" is not an integer (line 4)`},
		{"", []string{"planner.alpha=~"}, `planner.alpha: is empty`},
	}
	for _, c := range cases {
		cfg := preset(t)
		err := loadConfig(&cfg, c.file, c.overrides)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q overrides %v: error %v, want a usage error mentioning %q", c.file, c.overrides, err, c.want)
		}
	}
	// An empty file changes nothing.
	cfg := preset(t)
	if err := loadConfig(&cfg, write(""), nil); err != nil || cfg.Planner.Population != 150 {
		t.Fatalf("empty file: %v, %+v", err, cfg.Planner)
	}
}

func TestChooseTask(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("task: pendulum\n"), 0o644)
	for _, tc := range []struct {
		flag, file string
		kv         []string
		want       string // "" for an error
	}{
		{"", "", []string{"seed=1", "task=pointmass"}, "pointmass"},
		{"", p, nil, "pendulum"},
		{"", "", nil, "cartpole-swingup"},
		{"pendulum", "", []string{"task=pendulum"}, "pendulum"},
		{"pendulum", "", []string{"task=pointmass"}, ""},
		{"pointmass", p, nil, ""},
		{"", p, []string{"task=pointmass"}, ""},
		{"no-such-task", "", nil, ""},
	} {
		got, err := chooseTask(tc.flag, tc.file, tc.kv)
		var ue usageError
		if tc.want == "" {
			if err == nil || !errors.As(err, &ue) {
				t.Errorf("--task %q file %q %v: %q, %v; want a usage error", tc.flag, tc.file, tc.kv, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("--task %q file %q %v: %q, %v; want %q", tc.flag, tc.file, tc.kv, got, err, tc.want)
		}
	}
}

func TestOverrideListElements(t *testing.T) {
	s, err := study.Preset("fast", study.LikelihoodReward, "cartpole-swingup")
	if err != nil {
		t.Fatal(err)
	}
	if err := loadConfig(&s, "", []string{"datasets.expert.episodes=7", "datasets.2.points=5", "datasets.expert.planner.population=99"}); err != nil {
		t.Fatal(err)
	}
	if s.Datasets[0].Episodes != 7 || s.Datasets[2].Points != 5 || s.Datasets[0].Planner.Population != 99 {
		t.Fatalf("datasets %+v", s.Datasets)
	}
	for _, bad := range []string{"datasets.nope.points=3", "datasets.9.points=3", "datasets.expert=3"} {
		if err := loadConfig(&s, "", []string{bad}); err == nil {
			t.Fatalf("override %s accepted", bad)
		}
	}
}
