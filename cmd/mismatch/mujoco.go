//go:build cgo && !nomujoco

package main

// The MuJoCo tasks need cgo and libmujoco; build with -tags nomujoco to
// leave them out.
import _ "github.com/mismatch-rl/mismatch/env/mujoco"
