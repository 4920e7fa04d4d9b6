package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/dirlock"
	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/study/attack"
)

// readTaskData reads an .npz of transitions for the task, refusing data
// of another width before any work starts.
func readTaskData(path, flag string, task env.Task) (*data.Buffer, error) {
	b, err := data.ReadNPZ(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	od, ad := task.ObservationSpace().Dim(), task.ActionSpace().Dim()
	if b.ObsDim != od || b.ActDim != ad {
		return nil, badInput("%s %s holds %d-wide observations and %d-wide actions; the model's task %s has %d and %d", flag, path, b.ObsDim, b.ActDim, task.Name(), od, ad)
	}
	if b.Len() == 0 {
		return nil, badInput("%s %s holds no transitions", flag, path)
	}
	return b, nil
}

func attackCommand() *cobra.Command {
	var model, held, expert, out, file string
	var mem memoryFlag
	cmd := &cobra.Command{
		Use:   "attack --model M.safetensors --data HELD.npz [key=value ...]",
		Short: "Search for a model as likely as a good one that controls worse (the paper's adversarial search)",
		Long: `Looks for a model whose held-out negative log-likelihood is no worse
than a trained model's (tolerance=0) but which earns less reward in MPC.

It starts (start=lure, the default) by fine-tuning the model to believe in
a shortcut where the held-out data are silent: states its own imagination
reaches under random actions, far from every held-out transition, are
taught to lead toward the best state in the data. Then CMA-ES moves the
last layer (or all of it) to lower the reward further, rejecting any
candidate whose held-out NLL is worse than the original's. iterations=0
takes the start as the result; start=refit or start=original run CMA-ES
alone. The search scores candidates with a cheap planner (search.*); the
original and the result are re-measured with more episodes and the final
planner (final.*).

What it computes is kept in the output directory as it goes (journal.json,
lure.safetensors): run the same command again after a stop and it resumes
where it was, with the result an uninterrupted run gives.
`,
		Example: `  mismatch study attack --model runs/p/models/trial_015.safetensors --data runs/p/data.npz \
      --expert runs/s/datasets/expert.trajectory.npz --out runs/attack iterations=30
  mismatch study attack --model M --data D iterations=0 final.episodes=5   # the lure alone`,
		RunE: func(cmd *cobra.Command, kv []string) error {
			if model == "" || held == "" {
				return badInput("--model and --data are required")
			}
			m, err := dynamics.Load(model, nil)
			if err != nil {
				return usageError{err}
			}
			task, err := env.Lookup(m.Spec().Name())
			if err != nil {
				return usageError{err}
			}
			c, err := attack.DefaultConfig(task.Name())
			if err != nil {
				return usageError{err}
			}
			if err := loadConfig(&c, file, kv); err != nil {
				return err
			}
			hb, err := readTaskData(held, "--data", task)
			if err != nil {
				return err
			}
			if err := mem.check(attackMemory(c, m, task, float64(hb.Len()))); err != nil {
				return err
			}
			precisionNotice(c.Search.Planner, c.Final.Planner)
			var eb *data.Buffer
			if expert != "" {
				if eb, err = readTaskData(expert, "--expert", task); err != nil {
					return err
				}
			}
			if out == "" {
				out = filepath.Join("runs", "attack")
			}
			if err := dirlock.CheckOwned(out, attack.File, "figures", provenance.File,
				attack.JournalFile, attack.LureFile, dynamics.SidecarPath(attack.LureFile)); err != nil {
				return usageError{err}
			}
			lock, err := dirlock.Acquire(out, "attack")
			if err != nil {
				return err
			}
			defer lock.Release()
			if err := safefile.Clean(out); err != nil {
				return err
			}
			logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
			done := record(cmd.Context(), out, c.Final.Planner.Precision.String())
			res, err := attack.Run(cmd.Context(), task, m, hb, c, out, logf)
			done(err)
			if err != nil {
				return err
			}
			if err := attack.WriteReport(out, c, res, eb, env.ObservationNames(task)); err != nil {
				return err
			}
			fmt.Printf("reward %.2f ± %.2f → %.2f ± %.2f; held-out NLL %.4f → %.4f\n%s\n", res.Before.RewardMean, res.Before.RewardStd,
				res.After.RewardMean, res.After.RewardStd, res.Before.NLL, res.After.NLL, filepath.Join(out, "report.html"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "checkpoint of the model to attack")
	f.StringVar(&held, "data", "", "held-out data (.npz) whose likelihood must not get worse")
	f.StringVar(&expert, "expert", "", "an expert trajectory (.npz) to draw beside the models'")
	f.StringVar(&out, "out", "", "output directory (default runs/attack)")
	f.StringVar(&file, "config", "", "YAML attack config")
	mem.register(f)
	return cmd
}
