package main

import (
	"fmt"
	"reflect"
	"strings"

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
			fmt.Fprintf(w, "%-18s %4s %9s %4s %6s  %s\n", "task", "obs", "features", "act", "steps", "engine")
			for _, name := range env.Names() {
				t, _ := env.Lookup(name)
				engine := "pure Go"
				if strings.Contains(reflect.TypeOf(t).Elem().PkgPath(), "/env/mujoco") {
					engine = "MuJoCo (libmujoco; not in -tags nomujoco builds)"
				}
				fmt.Fprintf(w, "%-18s %4d %9d %4d %6d  %s\n", name, t.ObservationSpace().Dim(), t.InputDim(), t.ActionSpace().Dim(), t.EpisodeSteps(), engine)
			}
			return nil
		},
	}
}
