package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/study/reproduce"
)

func reproduceCommand() *cobra.Command {
	var src reproduce.Sources
	var page, md string
	cmd := &cobra.Command{
		Use:   "reproduce ROOT",
		Short: "Put the paper's findings beside this project's studies of them, in one page",
		Long: `Read the finished studies under ROOT (as scripts/reproduce.sh lays them
out: likelihood-reward-cartpole, likelihood-reward-halfcheetah,
likelihood-reward-halfcheetah-fine, loss-reward-cartpole, reweight-cartpole, attack-cartpole; a flag names
another directory for one of them) and write one self-contained HTML page
with, for each of the paper's findings, the paper's number or claim, ours
with its interval, the figure, the command, the wall time and machine, and
a verdict. A study that is missing or unfinished is listed as not run.
Nothing is run.`,
		Example: `  mismatch reproduce runs/reproduce
  mismatch reproduce runs/reproduce --markdown REPRODUCTION.md
  mismatch reproduce runs/reproduce --cartpole runs/study-likelihood-reward-fast`,
		Args: usageArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if st, err := os.Stat(a[0]); err != nil || !st.IsDir() {
				return badInput("reproduce: %s is not a directory of studies", a[0])
			}
			s := reproduce.Layout(a[0])
			for _, o := range []struct{ flag, dst *string }{{&src.CartpoleLikelihood, &s.CartpoleLikelihood}, {&src.CheetahLikelihood, &s.CheetahLikelihood},
				{&src.CheetahFineLikelihood, &s.CheetahFineLikelihood},
				{&src.LossReward, &s.LossReward}, {&src.Reweight, &s.Reweight}, {&src.Attack, &s.Attack}} {
				if *o.flag != "" {
					*o.dst = *o.flag
				}
			}
			fs, err := reproduce.Assemble(s)
			if err != nil {
				return err
			}
			if page == "" {
				page = filepath.Join(a[0], "reproduction.html")
			}
			if err := reproduce.WritePage(page, fs); err != nil {
				return err
			}
			if md != "" {
				if err := safefile.Write(md, func(w io.Writer) error { return reproduce.WriteMarkdown(w, fs) }); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			for _, f := range fs {
				fmt.Fprintf(w, "%-15s %s\n", f.Verdict, f.Name)
			}
			fmt.Fprintln(w, "page:", page)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src.CartpoleLikelihood, "cartpole", "", "likelihood-vs-reward study on cartpole-swingup")
	f.StringVar(&src.CheetahLikelihood, "halfcheetah", "", "likelihood-vs-reward study on halfcheetah")
	f.StringVar(&src.CheetahFineLikelihood, "halfcheetah-fine", "", "likelihood-vs-reward study on halfcheetah-fine")
	f.StringVar(&src.LossReward, "loss-reward", "", "loss-vs-reward study")
	f.StringVar(&src.Reweight, "reweight", "", "re-weighting study")
	f.StringVar(&src.Attack, "attack", "", "adversarial search output")
	f.StringVar(&page, "html", "", "page to write (default ROOT/reproduction.html)")
	f.StringVar(&md, "markdown", "", "also write the findings as Markdown here (REPRODUCTION.md)")
	return cmd
}
