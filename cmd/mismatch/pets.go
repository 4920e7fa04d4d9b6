package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/pets"
)

func petsCommand() *cobra.Command {
	var preset, task, file, out string
	var printConfig bool
	var mem memoryFlag
	cmd := &cobra.Command{
		Use:   "pets [key=value ...]",
		Short: "Run PETS: random trials, then train a model and run MPC each trial",
		Long: `Run PETS on a task and write a run directory: config.yaml, trials.csv
(reward, training loss, timings per trial), data.npz (every transition, in
mbrl-lib's .npz layout), models/trial_NNN.safetensors (each trial's model),
reward.png, reward.svg and report.html.

Rerunning with the same directory and config resumes after the last
finished trial. Ctrl-C stops the run, keeping every finished trial.

Every config key, with the value the preset gives it:
  mismatch pets --print-config [--task NAME] [--preset NAME]
Set any of them as key=value (lists: model.hidden=[64,64]).`,
		Example: `  mismatch pets --preset fast
  mismatch pets --task halfcheetah --out runs/cheetah planner.population=300 seed=2
  mismatch pets --config my.yaml model.hidden=[256,256]`,
		RunE: func(cmd *cobra.Command, kv []string) error {
			for _, a := range kv {
				if !strings.Contains(a, "=") {
					return badInput("argument %q is not key=value", a)
				}
			}
			task, err := chooseTask(task, file, kv)
			if err != nil {
				return err
			}
			cfg, err := pets.Preset(preset, task)
			if err != nil {
				return usageError{err}
			}
			if err := loadConfig(&cfg, file, kv); err != nil {
				return err
			}
			if printConfig {
				b, _ := yaml.Marshal(cfg)
				_, err := cmd.OutOrStdout().Write(b)
				return err
			}
			t, _ := env.Lookup(task)
			if err := mem.check(petsMemory(cfg, t, "")); err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("runs", fmt.Sprintf("pets-%s-%s-seed%d", cfg.Task, preset, cfg.Seed))
			}
			if err := pets.CheckDir(out); err != nil {
				return usageError{err}
			}
			precisionNotice(cfg.Planner)
			fmt.Fprintf(os.Stderr, "PETS on %s (%s preset) → %s\n", cfg.Task, preset, out)
			pr := newProgress(os.Stderr)
			done := record(cmd.Context(), out, cfg.Planner.Precision.String())
			rows, runErr := pets.Run(cmd.Context(), cfg, pets.Options{Dir: out, Progress: func(e pets.Event) {
				pr.event(e)
				if e.Phase == "trial" {
					// Keep the figures and report current as trials finish.
					if err := pets.WriteReport(out); err != nil {
						pr.log("report: %v", err)
					}
				}
			}})
			pr.done()
			done(runErr)
			if runErr != nil {
				if cmd.Context().Err() != nil {
					fmt.Fprintf(os.Stderr, "stopped: %d finished trials kept in %s\n", countMPC(rows), out)
				}
				return runErr
			}
			if err := pets.WriteReport(out); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "done: %d trials; report: %s\n", countMPC(rows), filepath.Join(out, "report.html"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "default", "built-in settings: "+strings.Join(pets.Presets, ", "))
	f.StringVar(&task, "task", "", "task name (see mismatch tasks); default cartpole-swingup")
	f.StringVar(&file, "config", "", "YAML config file, applied over the preset")
	f.StringVar(&out, "out", "", "run directory (default runs/pets-TASK-PRESET-seedN)")
	f.BoolVar(&printConfig, "print-config", false, "print the resolved config and exit")
	mem.register(f)
	return cmd
}

// chooseTask returns the task whose preset a run starts from: the --task
// flag, or else the task a key=value argument or the config file names,
// or else cartpole-swingup. Two different tasks are bad input, and so is
// a task that is not registered.
func chooseTask(flag, file string, kv []string) (string, error) {
	type source struct{ where, task string }
	var named []source
	if flag != "" {
		named = append(named, source{"--task", flag})
	}
	for _, a := range kv {
		if v, ok := strings.CutPrefix(a, "task="); ok {
			named = append(named, source{"task=" + v, v})
		}
	}
	if file != "" {
		var c struct {
			Task string `yaml:"task"`
		}
		if raw, err := os.ReadFile(file); err == nil && yaml.Unmarshal(raw, &c) == nil && c.Task != "" {
			named = append(named, source{"task in " + file, c.Task})
		}
	}
	task := "cartpole-swingup"
	for i, n := range named {
		if i == 0 {
			task = n.task
		} else if n.task != task {
			return "", badInput("two tasks: %s names %q, %s names %q; give one", named[0].where, task, n.where, n.task)
		}
	}
	if _, err := env.Lookup(task); err != nil {
		return "", usageError{err}
	}
	return task, nil
}

func countMPC(rows []pets.Trial) int {
	n := 0
	for _, r := range rows {
		if r.Kind == pets.KindMPC {
			n++
		}
	}
	return n
}

func reportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Write the figures and report.html of a run directory",
		Args:  usageArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if _, err := os.Stat(filepath.Join(a[0], pets.TrialsFile)); err != nil {
				return usageError{fmt.Errorf("%s is not a run directory: %w", a[0], err)}
			}
			if err := pets.WriteReport(a[0]); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(a[0], "report.html"))
			return nil
		},
	}
}
