package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/metrics"
	"github.com/mismatch-rl/mismatch/study"
)

func studyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "study",
		Short: "Objective-mismatch studies: likelihood vs reward, loss vs reward",
		Long: `A study scores a population of dynamics models by log-likelihood on
evaluation datasets and by the reward they earn in MPC, and relates the two.

  mismatch study run --preset fast                      # all stages, one machine
  mismatch study run --kind loss-reward --preset fast   # loss vs reward over epochs
  mismatch study prepare --preset paper --out S         # datasets and population
  mismatch study run --out S --shard 3/50               # one shard of the cells
  mismatch study merge S                                 # check, merge, report

A rerun skips every finished dataset, model and cell.`,
	}
	cmd.AddCommand(studyRunCommand(false), studyRunCommand(true), studyReportCommand("report"), studyReportCommand("merge"), studyMetricsCommand(), attackCommand())
	return cmd
}

type studyFlags struct {
	preset, kind, task, file, out, shard string
	workers                              int
	print, countRuns                     bool
	mem                                  memoryFlag
}

// check refuses a spec whose inputs (files, run directories) are bad or
// whose estimated memory exceeds the limit.
func (f *studyFlags) check(s study.Spec) error {
	task, err := env.Lookup(s.Task)
	if err != nil {
		return usageError{err}
	}
	if err := s.CheckInputs(task); err != nil {
		return badInput("%v", err)
	}
	workers := f.workers
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	return f.mem.check(studyMemory(s, task, workers))
}

func (f *studyFlags) spec(kv []string) (study.Spec, error) {
	for _, a := range kv {
		if !strings.Contains(a, "=") {
			return study.Spec{}, badInput("argument %q is not key=value", a)
		}
	}
	task, err := chooseTask(f.task, f.file, kv)
	if err != nil {
		return study.Spec{}, err
	}
	s, err := study.Preset(f.preset, f.kind, task)
	if err != nil {
		return s, usageError{err}
	}
	if err := loadConfig(&s, f.file, kv); err != nil {
		return s, err
	}
	return s, nil
}

// parseShard reads i/N from the flag, or auto/N: the index from a Slurm
// job array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job
// (JOB_COMPLETION_INDEX). N is always given, never taken from the array,
// so that one task resubmitted alone (--array=7) is still shard 7 of N.
func parseShard(flag string) (int, int, error) {
	if flag == "" {
		return 0, 1, nil
	}
	idx, count, ok := strings.Cut(flag, "/")
	if !ok || count == "" {
		return 0, 0, badInput("--shard %q: want i/N (for example 3/50) or auto/N (the index from the Slurm array or Kubernetes Indexed Job)", flag)
	}
	if idx == "auto" {
		switch {
		case os.Getenv("SLURM_ARRAY_TASK_ID") != "":
			idx = os.Getenv("SLURM_ARRAY_TASK_ID")
		case os.Getenv("JOB_COMPLETION_INDEX") != "":
			idx = os.Getenv("JOB_COMPLETION_INDEX")
		default:
			return 0, 0, badInput("--shard %q: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set", flag)
		}
	}
	i, err1 := strconv.Atoi(idx)
	n, err2 := strconv.Atoi(count)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, badInput("--shard %q: shard %q of %q is not an index in [0, N)", flag, idx, count)
	}
	return i, n, nil
}

func studyRunCommand(prepareOnly bool) *cobra.Command {
	f := &studyFlags{}
	use, short := "run [key=value ...]", "Run a study: prepare, evaluate the cells, analyse and report"
	if prepareOnly {
		use, short = "prepare [key=value ...]", "Build a study's datasets and population (before sharded runs)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, kv []string) error {
			shard, shards, err := parseShard(f.shard)
			if err != nil {
				return err
			}
			if f.out == "" {
				f.out = filepath.Join("runs", fmt.Sprintf("study-%s-%s", f.kind, f.preset))
			}
			logf := func(format string, a ...any) {
				fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
			}
			ctx := cmd.Context()
			var cellSec float64
			opt := study.Options{Dir: f.out, Shard: shard, Shards: shards, Workers: f.workers, Log: logf,
				Progress: func(done, total int, c study.Cell) {
					cellSec += c.Seconds
					eta := ""
					if done < total {
						eta = ", ETA " + cellsLeft(cellSec, done, total, f.workers).String()
					}
					logf("cell %d/%d %s: reward %.2f ± %.2f in %.0fs%s%s", done, total, c.ID, c.RewardMean, c.RewardStd, c.Seconds,
						map[bool]string{true: " (failed: " + c.Error + ")", false: ""}[c.Error != ""], eta)
				}}
			if shards > 1 && !prepareOnly {
				// Shards evaluate the cells of a prepared study.
				if _, err := os.Stat(filepath.Join(f.out, study.PopulationFile)); err != nil {
					return usageError{fmt.Errorf("%s is not prepared: run mismatch study prepare with --out %s first", f.out, f.out)}
				}
				s, err := study.LoadSpec(f.out)
				if err != nil {
					return usageError{err}
				}
				if err := f.check(s); err != nil {
					return err
				}
				logf("shard %d of %d in %s", shard, shards, f.out)
				done := record(ctx, f.out, s.Evaluation.Planner.Precision.String())
				err = study.RunCells(ctx, opt)
				done(err)
				return err
			}
			var s study.Spec
			if _, err := os.Stat(filepath.Join(f.out, study.SpecFile)); err == nil && len(kv) == 0 && f.file == "" && !cmd.Flags().Changed("preset") {
				// An existing study goes on with its own spec.
				if s, err = study.LoadSpec(f.out); err != nil {
					return err
				}
			} else if s, err = f.spec(kv); err != nil {
				return err
			}
			if f.countRuns {
				// What a cluster script shards in the first step: the
				// population's PETS runs, none for other populations.
				n := 0
				if s.Population.Kind == "pets" {
					n = s.Population.Runs
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), n)
				return err
			}
			if f.print {
				b, _ := yaml.Marshal(s)
				_, err := cmd.OutOrStdout().Write(b)
				return err
			}
			if err := f.check(s); err != nil {
				return err
			}
			if err := study.CheckDir(f.out); err != nil {
				return usageError{err}
			}
			precisionNotice(s.Evaluation.Planner, s.Population.PETS.Planner)
			t0 := time.Now()
			done := record(ctx, f.out, s.Evaluation.Planner.Precision.String())
			if prepareOnly {
				err := study.Prepare(ctx, s, opt)
				done(err)
				return err
			}
			res, err := study.Run(ctx, s, opt)
			done(err)
			if err != nil {
				return err
			}
			if err := study.Report(f.out, res); err != nil {
				return err
			}
			printCorrelations(res)
			logf("study done in %s: %s", time.Since(t0).Round(time.Second), filepath.Join(f.out, "report.html"))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.preset, "preset", "fast", "built-in study: "+strings.Join(study.Presets, ", "))
	fl.StringVar(&f.kind, "kind", study.LikelihoodReward, "study kind: "+study.LikelihoodReward+", "+study.LossReward+" or "+study.Reweight)
	fl.StringVar(&f.task, "task", "", "task (default cartpole-swingup)")
	fl.StringVar(&f.file, "spec", "", "YAML study spec, applied over the preset")
	fl.StringVar(&f.out, "out", "", "study directory (default runs/study-KIND-PRESET)")
	fl.IntVar(&f.workers, "workers", 0, "cells evaluated, and the population's PETS runs made, at once (default one per CPU)")
	fl.BoolVar(&f.print, "print-spec", false, "print the resolved spec and exit")
	f.mem.register(fl)
	if prepareOnly {
		fl.BoolVar(&f.countRuns, "count-runs", false, "print how many PETS runs the population has to shard (0 for other populations) and exit")
		fl.StringVar(&f.shard, "shard", "", "run only shard i of N of the population's PETS runs: i/N, or auto/N (Slurm array or Kubernetes Indexed Job index); then prepare once more without it")
	} else {
		fl.StringVar(&f.shard, "shard", "", "evaluate only shard i of N of a prepared study: i/N, or auto/N (Slurm array or Kubernetes Indexed Job index)")
	}
	return cmd
}

func printCorrelations(r *study.Results) {
	if r.Spec.Kind != study.LikelihoodReward {
		return
	}
	fmt.Printf("%-12s %-6s %6s  %-8s %-18s %-8s %-8s\n", "dataset", "group", "models", "pearson", "interval", "spearman", "kendall")
	for _, c := range r.Correlations {
		iv := "undefined"
		if c.Pearson.HasCI {
			iv = fmt.Sprintf("[%.3f, %.3f]", c.Pearson.Interval.Low, c.Pearson.Interval.High)
		}
		fmt.Printf("%-12s %-6s %6d  %-8s %-18s %-8s %-8s\n", c.Dataset, c.Group, c.N, study.FormatStat(c.Pearson), iv, study.FormatStat(c.Spearman), study.FormatStat(c.Kendall))
	}
}

func studyReportCommand(name string) *cobra.Command {
	short := "Analyse a finished study and write its tables, figures and report"
	if name == "merge" {
		short = "Check that every shard's cells are present, then merge and report"
	}
	return &cobra.Command{
		Use:   name + " DIR",
		Short: short,
		Args:  usageArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := study.Analyse(a[0])
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return usageError{fmt.Errorf("%s is not a prepared study: %w", a[0], err)}
				}
				var mc *study.MissingCells
				if errors.As(err, &mc) {
					if sh := mc.RerunShards(); len(sh) > 0 {
						return fmt.Errorf("%w\nrerun each with: mismatch study run --out %q --shard I/%d (on Slurm: FROM=cells ARRAY=%s deploy/slurm/submit.sh with the study's settings)",
							err, a[0], mc.Shards, strings.Trim(strings.ReplaceAll(fmt.Sprint(sh), " ", ","), "[]"))
					}
					return fmt.Errorf("%w\nfinish them with: mismatch study run --out %s", err, a[0])
				}
				return err
			}
			if err := study.Report(a[0], res); err != nil {
				return err
			}
			printCorrelations(res)
			fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(a[0], "report.html"))
			return nil
		},
	}
}

func studyMetricsCommand() *cobra.Command {
	var names []string
	var workers int
	cmd := &cobra.Command{
		Use:   "metrics DIR",
		Short: "Rank model metrics by how well they predict the study's closed-loop rewards",
		Long: `Score every model of a finished study with model metrics (one-step
likelihood and its relatives, calibration, open-loop state and return error,
expert-reweighted likelihood), rank every metric's columns by how well they
predict the models' closed-loop rewards (Pearson, Spearman, Kendall with
bootstrap intervals, and the difference of |Spearman| from the NLL on the
same dataset, with a paired bootstrap interval), and write metrics.csv.
Rewards come from the study's cells; metric values are kept beside them, so
a rerun computes only what is new.`,
		Example: `  mismatch study metrics runs/study-likelihood-reward-fast
  mismatch study metrics --metrics likelihood,open-loop runs/S`,
		Args: usageArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			for _, n := range names {
				if _, err := metrics.Lookup(n); err != nil {
					return usageError{err}
				}
			}
			logf := func(format string, args ...any) {
				fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
			}
			lb, err := study.Metrics(cmd.Context(), a[0], study.MetricsOptions{Names: names, Workers: workers, Log: logf})
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return usageError{fmt.Errorf("%s is not a finished study: %w", a[0], err)}
				}
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%d models (%d left out: failed cells)\n", lb.Models, len(lb.Skipped))
			fmt.Fprintf(w, "%-4s %-40s %-9s %-18s %-12s %s\n", "rank", "column", "spearman", "interval", "vs NLL", "interval")
			for i, r := range lb.Rows {
				sp, iv, vs, viv := "undefined", "", "", ""
				if r.Spearman.Defined {
					sp = fmt.Sprintf("%.3f", r.Spearman.Value)
				}
				if r.Spearman.HasCI {
					iv = fmt.Sprintf("[%.3f, %.3f]", r.Spearman.Interval.Low, r.Spearman.Interval.High)
				}
				if r.VsBaseline.Defined {
					vs = fmt.Sprintf("%+.3f", r.VsBaseline.Value)
				}
				if r.VsBaseline.HasCI {
					viv = fmt.Sprintf("[%+.3f, %+.3f]", r.VsBaseline.Interval.Low, r.VsBaseline.Interval.High)
				}
				fmt.Fprintf(w, "%-4d %-40s %-9s %-18s %-12s %s\n", i+1, r.Column, sp, iv, vs, viv)
			}
			fmt.Fprintln(w, filepath.Join(a[0], study.MetricsFile))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&names, "metrics", nil, "metrics to compute (default all: "+strings.Join(metrics.Names(), ", ")+")")
	cmd.Flags().IntVar(&workers, "workers", 0, "models scored at once (default one per CPU)")
	return cmd
}

// cellsLeft is the time the cells still to do need, from the mean time of
// the done ones (sec in all) and the cells evaluated at once.
func cellsLeft(sec float64, done, total, workers int) time.Duration {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	if done < 1 || total <= done {
		return 0
	}
	left := total - done
	rounds := (left + workers - 1) / workers
	return time.Duration(sec / float64(done) * float64(rounds) * float64(time.Second)).Round(time.Second)
}
