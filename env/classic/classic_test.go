package classic

import (
	"math"
	"testing"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/envtest"
)

func TestContracts(t *testing.T) {
	for _, task := range []env.Task{CartPole, Pendulum, PointMass} {
		t.Run(task.Name(), func(t *testing.T) { envtest.Check(t, task, envtest.Options{}) })
	}
}

func TestRegistered(t *testing.T) {
	for _, name := range []string{"cartpole", "pendulum", "pointmass"} {
		if _, err := env.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
}

func set(t *testing.T, task env.Task, obs []float32) env.Simulator {
	t.Helper()
	e, _ := task.New()
	s := e.(env.Simulator)
	s.Reset(0)
	if err := s.(env.ObservationSetter).SetObservation(obs); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPointMassMotion(t *testing.T) {
	// Full force from rest: after n steps v = 0.1·n and, by semi-implicit
	// Euler, x = 0.01·n(n+1)/2.
	s := set(t, PointMass, []float32{0, 0})
	var obs []float32
	for n := 1; n <= 10; n++ {
		obs, _, _, _, _ = s.Step([]float32{1})
		wantV, wantX := 0.1*float64(n), 0.01*float64(n*(n+1))/2
		if math.Abs(float64(obs[1])-wantV) > 1e-6 || math.Abs(float64(obs[0])-wantX) > 1e-6 {
			t.Fatalf("after %d steps x=%g v=%g, want %g %g", n, obs[0], obs[1], wantX, wantV)
		}
	}
}

func TestPendulumHangsAtRest(t *testing.T) {
	// θ = π is the stable bottom: with no torque it stays there, and the
	// reward there is −π² per step.
	s := set(t, Pendulum, []float32{-1, 0, 0})
	for i := 0; i < 200; i++ {
		obs, r, _, _, err := s.Step([]float32{0})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(obs[0])+1) > 1e-6 || math.Abs(float64(obs[2])) > 1e-6 {
			t.Fatalf("step %d: pendulum moved to %v", i, obs)
		}
		if math.Abs(r+math.Pi*math.Pi) > 1e-6 {
			t.Fatalf("reward at the bottom %g, want −π²", r)
		}
	}
}

func TestCartPoleFallsWithoutControl(t *testing.T) {
	// Upright is unstable: a small tilt grows until the episode ends, and
	// the tilt grows in its own direction.
	s := set(t, CartPole, []float32{0, 0, 0.01, 0})
	for i := 0; ; i++ {
		obs, r, term, _, err := s.Step([]float32{0})
		if err != nil {
			t.Fatal(err)
		}
		if obs[2] < 0.01 {
			t.Fatalf("step %d: the tilt shrank to %g", i, obs[2])
		}
		if term {
			if r != 0 || obs[2] <= 12*math.Pi/180 {
				t.Fatalf("terminated at θ=%g with reward %g", obs[2], r)
			}
			if i > 150 {
				t.Fatalf("took %d steps to fall", i)
			}
			return
		}
		if r != 1 {
			t.Fatalf("reward %g while balanced", r)
		}
	}
}
