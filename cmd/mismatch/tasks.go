package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mismatch-rl/mismatch/env"
)

func tasksCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tasks",
		Short: "List the registered tasks",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-18s %4s %4s %6s\n", "task", "obs", "act", "steps")
			for _, name := range env.Names() {
				t, _ := env.Lookup(name)
				fmt.Fprintf(w, "%-18s %4d %4d %6d\n", name, t.ObservationSpace().Dim(), t.ActionSpace().Dim(), t.EpisodeSteps())
			}
			return nil
		},
	}
}
