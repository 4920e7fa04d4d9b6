package mujoco

import (
	_ "embed"
	"math"
	"strconv"
	"strings"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/rng"
)

//go:embed models/cartpole.xml
var cartpoleXML string

//go:embed models/halfcheetah.xml
var halfcheetahXML string

//go:embed models/reacher.xml
var reacherXML string

//go:embed models/pusher.xml
var pusherXML string

// The tasks, also registered with package env under their names.
var (
	// CartpoleSwingup is PETS's cartpole swing-up: observation
	// [x, θ, ẋ, θ̇] with θ = 0 hanging down, one action in [−3, 3], reward
	// exp(−‖p − (0, 0.6)‖²/0.6²) − 0.01‖a‖² for the pole tip p after the
	// step, 200 steps of 0.04 s from rest hanging down (N(0, 0.1) noise).
	// Model input [sin θ, cos θ, x, ẋ, θ̇].
	CartpoleSwingup env.Task = &task{spec: cartpoleSpec}
	// HalfCheetah is PETS's half-cheetah: observation 18,
	// [(x_t − x_{t−1})/dt, qpos[1:], qvel], six actions in [−1, 1], reward
	// obs[0] − 0.1‖a‖², 1000 steps of 0.05 s. Model input 18 (the pitch as
	// sine and cosine, the velocity left out); the velocity is predicted
	// as a value, the rest as changes. An observation sets a state (at
	// forward position 0, which nothing depends on).
	HalfCheetah env.Task = &task{spec: halfcheetahSpec}
	// HalfCheetahFine is HalfCheetah integrated at a 0.005 s timestep, 10
	// substeps a step (the same 0.05 s): the same task for a model or a
	// planner — observation, actions, reward, episode — but not PETS's
	// numerics. At Gym's 0.01 s its soft contacts (time constant 0.02 s,
	// twice the timestep, the least MuJoCo advises) can be driven to
	// launch the cheetah: a CEM planner on the simulator found a gait of
	// 163 m/s in one of two expert episodes, where this variant ran the
	// same planner and seeds at 11 m/s (see the README). Its name is
	// "halfcheetah-fine"; it is an env.Variant of "halfcheetah", whose
	// presets it takes.
	HalfCheetahFine env.Task = &task{spec: halfcheetahFineSpec}
	// Reacher is PETS's 3-D reacher: observation 17, the arm's seven joint
	// angles, the goal and the arm's seven joint velocities; seven torques
	// in [−20, 20]; reward −‖ee − goal‖² − 0.01‖a‖² after the step;
	// 150 steps of 0.02 s. The planner measures against the goal observed
	// when planning began, as PETS's does. The end effector is the arm's
	// (forward kinematics, see reacherEE), where PETS's closed form departs
	// from the arm once the elbow or wrist passes zero.
	Reacher env.Task = &task{spec: reacherSpec}
	// Pusher is PETS's pusher: observation 20, the arm's seven joint
	// angles and velocities, the arm's tip and the object's position; the
	// goal is fixed, at (0.45, −0.05, −0.323). Seven torques in [−2, 2];
	// reward −1.25‖obj − goal‖₁ − 0.5‖obj − tip‖₁ − 0.1‖a‖² of the state
	// before the step (as PETS's environment computes it), while the
	// planner scores the state after it (as PETS's planner does); 150
	// steps of 0.04 s. The tip is the centre of mass of the tip body (what
	// PETS reads through the old gym's get_body_com), 0.1 m beyond the
	// body's origin. PETS reads positions one substep before the state it
	// reports (mujoco-py's values from the last substep's forward pass);
	// here they are the reported state's.
	Pusher env.Task = &task{spec: pusherSpec}
)

func init() {
	for _, t := range []env.Task{CartpoleSwingup, HalfCheetah, HalfCheetahFine, Reacher, Pusher} {
		env.Register(t)
	}
}

func sumSq32(a []float32) float64 {
	var s float64
	for _, v := range a {
		s += float64(v) * float64(v)
	}
	return s
}

func toF32(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// Cartpole swing-up.

const (
	cartpoleLen   = 0.6
	cartpoleForce = 3 // the actuator's control range is ±cartpoleForce
)

// blockRows is how many rows the tasks' batched functions take at a time:
// their scratch lives on the stack.
const blockRows = 64

// angles holds the sines and cosines of one observation column over a
// block of rows.
type angles struct {
	a, sin, cos [blockRows]float32
	n           int
}

// load takes column j of rows lo… of obs (od wide, rows rows in all), as
// many as a block holds.
func (b *angles) load(obs []float32, od, j, lo, rows int) {
	b.n = min(blockRows, rows-lo)
	for i := range b.n {
		b.a[i] = obs[(lo+i)*od+j]
	}
	kernel.Sincos(b.sin[:b.n], b.cos[:b.n], b.a[:b.n])
}

// cartpoleExponent is the exponent of the cartpole's reward: minus the
// pole tip's squared distance from upright, in pole lengths squared.
func cartpoleExponent(tipX, tipZ float64) float64 {
	dz := tipZ - cartpoleLen
	return -(tipX*tipX + dz*dz) / (cartpoleLen * cartpoleLen)
}

// cartpoleCtrlCost weighs the squared action in the cartpole's reward.
const cartpoleCtrlCost = 0.01

func cartpoleReward(tipX, tipZ, ctrlSq float64) float64 {
	return math.Exp(cartpoleExponent(tipX, tipZ)) - cartpoleCtrlCost*ctrlSq
}

var cartpoleSpec = spec{
	// CEM on the true simulator (population 400, horizon 25) scores
	// 178.8–180.2 per episode; the paper's expert bar is 179.
	reference: 179, referenceSource: "CEM on the true simulator (178.8–180.2)",
	name: "cartpole-swingup", xml: cartpoleXML, frameSkip: 2, steps: 200, obsDim: 4,
	names: []string{"cart position x", "pole angle θ", "cart velocity", "pole angular velocity"},
	act:   env.Uniform(1, -cartpoleForce, cartpoleForce),
	sites: []string{"tip"},
	reset: func(src *rng.Source, qpos, qvel []float64) {
		for i := range qpos {
			qpos[i] += 0.1 * src.Normal()
		}
		for i := range qvel {
			qvel[i] += 0.1 * src.Normal()
		}
	},
	observe: func(dst []float32, cur, _ record, _ float64) {
		q, v := cur.qpos(), cur.qvel()
		dst[0], dst[1], dst[2], dst[3] = float32(q[0]), float32(q[1]), float32(v[0]), float32(v[1])
	},
	stepReward: func(_, cur record, act []float32, _ float64) float64 {
		tip := cur.pos(0)
		return cartpoleReward(tip[0], tip[2], sumSq32(act))
	},
	rewards: func(dst, _, act, next []float32) {
		// cartpoleReward over a block at a time, its exp in float32.
		var b angles
		for lo := 0; lo < len(dst); lo += blockRows {
			b.load(next, 4, 1, lo, len(dst))
			for i := range b.n {
				x := float64(next[(lo+i)*4])
				b.a[i] = float32(cartpoleExponent(x-cartpoleLen*float64(b.sin[i]), -cartpoleLen*float64(b.cos[i])))
			}
			kernel.Exp(b.a[:b.n], b.a[:b.n])
			for i := range b.n {
				a := min(max(act[lo+i], -cartpoleForce), cartpoleForce)
				dst[lo+i] = b.a[i] - cartpoleCtrlCost*a*a
			}
		}
	},
	inputDim: 5,
	preprocess: func(dst, obs []float32) {
		var b angles
		for lo := 0; lo < len(obs)/4; lo += blockRows {
			b.load(obs, 4, 1, lo, len(obs)/4)
			for i := range b.n {
				o, d := obs[(lo+i)*4:(lo+i+1)*4], dst[(lo+i)*5:(lo+i+1)*5]
				d[0], d[1], d[2], d[3], d[4] = b.sin[i], b.cos[i], o[0], o[2], o[3]
			}
		}
	},
	fromObs: func(qpos, qvel []float64, obs []float32) {
		qpos[0], qpos[1], qvel[0], qvel[1] = float64(obs[0]), float64(obs[1]), float64(obs[2]), float64(obs[3])
	},
	// Most of the rail, every pole angle (the model sees its sine and
	// cosine), and the velocities PETS episodes reach (1st–99th
	// percentiles of a run's data: ẋ within ±4, θ̇ within ±12).
	coverage: mustBox([]float32{-2, -math.Pi, -4, -12}, []float32{2, math.Pi, 4, 12}),
}

func mustBox(lo, hi []float32) env.Box {
	b, err := env.NewBox(lo, hi)
	if err != nil {
		panic(err)
	}
	return b
}

// Half-cheetah.

var halfcheetahSpec = spec{
	name: "halfcheetah", xml: halfcheetahXML, frameSkip: 5, steps: 1000, obsDim: 18,
	act: env.Uniform(6, -1, 1),
	reset: func(src *rng.Source, qpos, qvel []float64) {
		for i := range qpos {
			qpos[i] += 0.001 * src.Normal()
		}
		for i := range qvel {
			qvel[i] += 0.001 * src.Normal()
		}
	},
	observe: func(dst []float32, cur, prev record, dt float64) {
		q := cur.qpos()
		dst[0] = float32((q[0] - prev.qpos()[0]) / dt)
		toF32(dst[1:9], q[1:])
		toF32(dst[9:18], cur.qvel())
	},
	stepReward: func(prev, cur record, act []float32, dt float64) float64 {
		return (cur.qpos()[0]-prev.qpos()[0])/dt - 0.1*sumSq32(act)
	},
	rewardRow: func(_, act, next []float32) float32 {
		return float32(float64(next[0]) - 0.1*sumSq32(act))
	},
	inputDim: 18,
	preprocess: func(dst, obs []float32) {
		var b angles
		for lo := 0; lo < len(obs)/18; lo += blockRows {
			b.load(obs, 18, 2, lo, len(obs)/18)
			for i := range b.n {
				o, d := obs[(lo+i)*18:(lo+i+1)*18], dst[(lo+i)*18:(lo+i+1)*18]
				d[0], d[1], d[2] = o[1], b.sin[i], b.cos[i]
				copy(d[3:], o[3:])
			}
		}
	},
	absolute: []int{0},
	// The observation holds everything but the forward position, which
	// nothing depends on: a state is set at x = 0, with the step before
	// it placed so that the observed forward speed is reproduced.
	fromObs: func(qpos, qvel []float64, obs []float32) {
		qpos[0] = 0
		for i := 1; i < 9; i++ {
			qpos[i] = float64(obs[i])
		}
		for i := 0; i < 9; i++ {
			qvel[i] = float64(obs[9+i])
		}
	},
	prevFromObs: func(prev record, obs []float32, dt float64) {
		prev.qpos()[0] = -float64(obs[0]) * dt
	},
}

// halfcheetahFineSpec is the half-cheetah at half the timestep, twice the
// substeps.
var halfcheetahFineSpec = refined(halfcheetahSpec, "halfcheetah-fine", 2)

// refined returns the half-cheetah spec s as a task named name that
// integrates its model at 1/k of the timestep, k times the substeps a
// step: the same 0.05 s step, a variant of s's task (env.Variant).
func refined(s spec, name string, k int) spec {
	const from = `timestep="0.01"`
	if strings.Count(s.xml, from) != 1 {
		panic("mujoco: the half-cheetah model's timestep is not " + from)
	}
	dt := strconv.FormatFloat(0.01/float64(k), 'g', -1, 64)
	s.base, s.name = s.name, name
	s.xml = strings.Replace(s.xml, from, `timestep="`+dt+`"`, 1)
	// The model's comment, which `mismatch tasks --mjcf` shows, too.
	s.xml = strings.Replace(s.xml, "timestep 0.01 s.", "timestep "+dt+" s here ("+name+"; PETS's is 0.01 s).", 1)
	s.frameSkip *= k
	return s
}

// Reacher.

// reacherEE is the forward kinematics of the reacher's end effector from
// the first six joint angles (the seventh rolls about the last link):
// rotations about z, y, x (shoulder), y, x (elbow), y (wrist) and links of
// 0.1, 0.4, 0.321 and 0.16828 m from the shoulder at (0, −0.188, 0). It is
// PETS's end effector; PETS's own closed form derives each link's hinge axis
// from a cross product whose sign follows the sine of the elbow and wrist
// angles, and so departs from the arm when those angles pass zero (which
// their soft limits allow). Composing rotation matrices has no such case.
func reacherEE(th []float32) [3]float64 {
	r := rotZ(float64(th[0]))
	p := [3]float64{0, -0.188, 0}
	p = addScaled(p, r, 0.1)
	r = mul(mul(r, rotY(float64(th[1]))), rotX(float64(th[2])))
	p = addScaled(p, r, 0.4)
	r = mul(mul(r, rotY(float64(th[3]))), rotX(float64(th[4])))
	p = addScaled(p, r, 0.321)
	r = mul(r, rotY(float64(th[5])))
	return addScaled(p, r, 0.16828)
}

type mat3 [3][3]float64

func rotX(a float64) mat3 {
	s, c := math.Sincos(a)
	return mat3{{1, 0, 0}, {0, c, -s}, {0, s, c}}
}

func rotY(a float64) mat3 {
	s, c := math.Sincos(a)
	return mat3{{c, 0, s}, {0, 1, 0}, {-s, 0, c}}
}

func rotZ(a float64) mat3 {
	s, c := math.Sincos(a)
	return mat3{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}
}

func mul(a, b mat3) mat3 {
	var m mat3
	for i := range 3 {
		for j := range 3 {
			m[i][j] = a[i][0]*b[0][j] + a[i][1]*b[1][j] + a[i][2]*b[2][j]
		}
	}
	return m
}

// addScaled returns p moved by l along the x axis of frame r.
func addScaled(p [3]float64, r mat3, l float64) [3]float64 {
	return [3]float64{p[0] + l*r[0][0], p[1] + l*r[1][0], p[2] + l*r[2][0]}
}

func sqDist(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

// reacherScore is the reward of arriving in obs with the goal at goal.
func reacherScore(obs, goal, act []float32) float32 {
	ee := reacherEE(obs[:7])
	g := []float64{float64(goal[0]), float64(goal[1]), float64(goal[2])}
	return float32(-sqDist(ee[:], g) - 0.01*sumSq32(act))
}

var reacherSpec = spec{
	name: "reacher", xml: reacherXML, frameSkip: 2, steps: 150, obsDim: 17,
	act:   env.Uniform(7, -20, 20),
	sites: []string{"ee"},
	reset: func(src *rng.Source, qpos, qvel []float64) {
		for i := 7; i < 10; i++ {
			qpos[i] += 0.1 * src.Normal()
		}
	},
	observe: func(dst []float32, cur, _ record, _ float64) {
		toF32(dst[:10], cur.qpos())
		toF32(dst[10:17], cur.qvel()[:7])
	},
	stepReward: func(_, cur record, act []float32, _ float64) float64 {
		// The goal body's slide joints have reference positions equal to
		// its placement, so its world position is qpos[7:10].
		return -sqDist(cur.pos(0), cur.qpos()[7:10]) - 0.01*sumSq32(act)
	},
	rewardRow: func(_, act, next []float32) float32 {
		return reacherScore(next, next[7:10], act)
	},
	// PETS's planner measures the predicted end effector against the
	// goal the environment holds, not the goal the model predicts.
	planRow: func(start, _, act, next []float32) float32 {
		return reacherScore(next, start[7:10], act)
	},
	inputDim:   17,
	preprocess: func(dst, obs []float32) { copy(dst, obs) },
	// The joints' ranges (±π for the unlimited rolls), goals within 0.3
	// of their mean, joint speeds within ±5 rad/s.
	coverage: mustBox(
		[]float32{-2.2854, -0.5236, -3.9, -2.3213, -math.Pi, -2.094, -math.Pi, -0.3, -0.05, -0.3, -5, -5, -5, -5, -5, -5, -5},
		[]float32{1.714602, 1.3963, 0.8, 0, math.Pi, 0, math.Pi, 0.3, 0.55, 0.3, 5, 5, 5, 5, 5, 5, 5}),
	fromObs: func(qpos, qvel []float64, obs []float32) {
		for i := 0; i < 10; i++ {
			qpos[i] = float64(obs[i])
		}
		for i := 0; i < 7; i++ {
			qvel[i] = float64(obs[10+i])
		}
	},
}

// Pusher.

// pusherGoal is where the goal body stays: its slide joints start at 0 in
// every episode and nothing pushes it.
var pusherGoal = [3]float64{0.45, -0.05, -0.323}

func pusherReward(tip, obj, goal []float64, ctrlSq float64) float64 {
	var near, dist float64
	for k := 0; k < 3; k++ {
		near += math.Abs(obj[k] - tip[k])
		dist += math.Abs(obj[k] - goal[k])
	}
	return -1.25*dist - 0.1*ctrlSq - 0.5*near
}

// pusherScore is pusherReward of the tip and object in an observation.
func pusherScore(obs, act []float32) float32 {
	var p [6]float64
	for i := range p {
		p[i] = float64(obs[14+i])
	}
	return float32(pusherReward(p[0:3], p[3:6], pusherGoal[:], sumSq32(act)))
}

var pusherSpec = spec{
	name: "pusher", xml: pusherXML, frameSkip: 4, steps: 150, obsDim: 20,
	act:    env.Uniform(7, -2, 2),
	bodies: []string{"object", "goal"},
	sites:  []string{"tip"},
	reset: func(src *rng.Source, qpos, qvel []float64) {
		// Object offset (y, x) around (−0.25, 0.15); goal at rest at its
		// reference; small arm velocities.
		qpos[7] = -0.25 + 0.025*src.Normal()
		qpos[8] = 0.15 + 0.025*src.Normal()
		qpos[9], qpos[10] = 0, 0
		for i := range 7 {
			qvel[i] = src.Uniform(-0.005, 0.005)
		}
	},
	observe: func(dst []float32, cur, _ record, _ float64) {
		toF32(dst[:7], cur.qpos()[:7])
		toF32(dst[7:14], cur.qvel()[:7])
		toF32(dst[14:17], cur.pos(2))
		toF32(dst[17:20], cur.pos(0))
	},
	stepReward: func(prev, _ record, act []float32, _ float64) float64 {
		return pusherReward(prev.pos(2), prev.pos(0), prev.pos(1), sumSq32(act))
	},
	rewardRow: func(obs, act, _ []float32) float32 { return pusherScore(obs, act) },
	// PETS's planner scores the state a step arrives in.
	planRow:    func(_, _, act, next []float32) float32 { return pusherScore(next, act) },
	inputDim:   20,
	preprocess: func(dst, obs []float32) { copy(dst, obs) },
}
