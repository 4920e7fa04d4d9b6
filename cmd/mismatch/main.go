// Command mismatch runs model-based reinforcement learning (PETS) and the
// objective-mismatch studies of Lambert et al. (2020).
//
//	mismatch pets [--preset default|fast|paper] [--task NAME] [--config FILE] [--out DIR] [key=value ...]
//	mismatch report DIR
//	mismatch tasks
//
// Configuration is YAML with typed defaults; key=value arguments override
// any field (for example planner.population=200 or model.hidden=[64,64]).
//
// Exit status: 0 done, 1 a failure at run time, 2 bad input (a config, a
// spec, a file, a flag, settings that need more memory than there is), 130
// stopped by SIGINT or SIGTERM (every finished trial or cell is kept).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	_ "github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/internal/provenance"
)

func main() {
	// SIGINT (Ctrl-C) and SIGTERM (what Slurm and Kubernetes send) stop
	// any phase within a second, keeping what is finished; a second signal
	// ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	root := &cobra.Command{
		Use:           "mismatch",
		Short:         "Model-based RL and objective mismatch",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	v, rev := provenance.Version()
	root.Version = fmt.Sprintf("%s (revision %s, %s)", v, rev, runtime.Version())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(petsCommand(), reportCommand(), reproduceCommand(), studyCommand(), tasksCommand())
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "mismatch:", err)
	var ue usageError
	switch {
	case errors.Is(err, context.Canceled):
		os.Exit(130)
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command"):
		os.Exit(2)
	}
	os.Exit(1)
}

// usageArgs wants n positional arguments; otherwise the command prints its
// usage, and the error counts as bad input.
func usageArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			cmd.Usage()
			return usageError{fmt.Errorf("%s needs %d argument(s), got %d", cmd.CommandPath(), n, len(a))}
		}
		return nil
	}
}

// args wraps a cobra argument check so that its errors count as bad input.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
