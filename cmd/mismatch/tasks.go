package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mismatch-rl/mismatch/env"
)

// mjcfTask is a task simulated by MuJoCo from an MJCF model.
type mjcfTask interface{ MJCF() string }

func tasksCommand() *cobra.Command {
	var mjcf string
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List the registered tasks, or print a MuJoCo task's model",
		Example: `  mismatch tasks
  mismatch tasks --mjcf pusher > pusher.xml`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if mjcf != "" {
				t, err := env.Lookup(mjcf)
				if err != nil {
					return usageError{err}
				}
				m, ok := t.(mjcfTask)
				if !ok {
					return usageError{fmt.Errorf("--mjcf %s: the task is pure Go, it has no MuJoCo model", mjcf)}
				}
				_, err = io.WriteString(w, m.MJCF())
				return err
			}
			fmt.Fprintf(w, "%-18s %4s %9s %4s %6s  %s\n", "task", "obs", "features", "act", "steps", "engine")
			for _, name := range env.Names() {
				t, _ := env.Lookup(name)
				engine := "pure Go"
				if _, ok := t.(mjcfTask); ok {
					engine = "MuJoCo (libmujoco; not in -tags nomujoco builds)"
				}
				if base := env.Base(name); base != name {
					engine += "; a variant of " + base + ", with its presets"
				}
				fmt.Fprintf(w, "%-18s %4d %9d %4d %6d  %s\n", name, t.ObservationSpace().Dim(), t.InputDim(), t.ActionSpace().Dim(), t.EpisodeSteps(), engine)
			}
			fmt.Fprintln(w, "mismatch tasks --mjcf NAME prints the model MuJoCo simulates for a MuJoCo task.")
			return nil
		},
	}
	cmd.Flags().StringVar(&mjcf, "mjcf", "", "print the MJCF model MuJoCo simulates for this task, and exit")
	return cmd
}
