// Package mujoco is the library's binding to MuJoCo (Debian's libmujoco,
// 2.2.x) and holds the MuJoCo tasks of the PETS suite: cartpole-swingup,
// halfcheetah, reacher and pusher, and halfcheetah-fine, the half-cheetah
// at half its timestep. It is the only package that includes MuJoCo's
// headers; importing it registers the tasks with package env.
//
// MuJoCo errors become Go errors: the binding installs error and warning
// handlers, so MuJoCo never prints, reads from the terminal, exits the
// process or writes MUJOCO_LOG.TXT. A step that MuJoCo flags as unstable
// (NaN or huge positions, velocities or accelerations, which MuJoCo answers
// by silently resetting the simulation, or a full contact or constraint
// list) is reported as an error too, never as a state.
//
// A Model is shared, read-only, by the simulations made from it; each Sim
// owns one mjData and serves one goroutine at a time. C memory is freed by
// Close, or by the garbage collector for values dropped without it.
package mujoco

/*
#cgo LDFLAGS: -lmujoco
#include <stdlib.h>
#include "binding.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

var installOnce sync.Once

// loadMu serialises model loading: MuJoCo's XML parser is not thread-safe.
var loadMu sync.Mutex

func install() {
	installOnce.Do(func() { C.mmw_install() })
}

// Version returns the MuJoCo library's version number (for example 222).
func Version() int {
	install()
	return int(C.mmw_install())
}

// Error is an error raised by MuJoCo, with its message.
type Error struct {
	Op  string // what the binding was doing
	Msg string // MuJoCo's message
}

func (e *Error) Error() string { return "mujoco: " + e.Op + ": " + e.Msg }

// ErrClosed is returned by models and simulations used after Close.
var ErrClosed = errors.New("mujoco: used after Close")

// Model is a compiled MuJoCo model.
type Model struct {
	h *modelHandle
	// Dimensions: generalised positions and velocities, actuators and
	// actuator activations.
	NQ, NV, NU, NA int
}

type modelHandle struct {
	mu     sync.Mutex
	m      *C.mjModel
	sims   int // open simulations made from the model
	closed bool
}

func (h *modelHandle) free() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m != nil {
		C.mmw_delete_model(h.m)
		h.m = nil
	}
}

// LoadXML compiles a model from MJCF text.
func LoadXML(xml string) (*Model, error) {
	if len(xml) == 0 {
		return nil, &Error{Op: "load XML", Msg: "empty model text"}
	}
	cx := C.CString(xml)
	defer C.free(unsafe.Pointer(cx))
	return load("load XML", func(buf *C.char, n C.int) *C.mjModel {
		return C.mmw_load_xml(cx, C.int(len(xml)), buf, n)
	})
}

// LoadFile compiles a model from an MJCF file.
func LoadFile(path string) (*Model, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	return load("load "+path, func(buf *C.char, n C.int) *C.mjModel {
		return C.mmw_load_file(cp, buf, n)
	})
}

func load(op string, f func(*C.char, C.int) *C.mjModel) (*Model, error) {
	install()
	const errSize = 1024
	buf := (*C.char)(C.calloc(errSize, 1))
	defer C.free(unsafe.Pointer(buf))
	loadMu.Lock()
	m := f(buf, errSize)
	loadMu.Unlock()
	if m == nil {
		msg := C.GoString(buf)
		if msg == "" {
			msg = "unknown error"
		}
		return nil, &Error{Op: op, Msg: msg}
	}
	h := &modelHandle{m: m}
	model := &Model{h: h, NQ: int(m.nq), NV: int(m.nv), NU: int(m.nu), NA: int(m.na)}
	runtime.AddCleanup(model, func(h *modelHandle) { h.free() }, h)
	return model, nil
}

// Close frees the model. It fails while simulations made from it are open.
func (m *Model) Close() error {
	m.h.mu.Lock()
	if m.h.closed {
		m.h.mu.Unlock()
		return nil
	}
	if m.h.sims > 0 {
		n := m.h.sims
		m.h.mu.Unlock()
		return fmt.Errorf("mujoco: model closed while %d simulations made from it are open", n)
	}
	m.h.closed = true
	m.h.mu.Unlock()
	m.h.free()
	return nil
}

// Timestep is the model's simulation timestep in seconds.
func (m *Model) Timestep() float64 { return float64(m.h.m.opt.timestep) }

// TotalMass is the sum of the bodies' masses.
func (m *Model) TotalMass() float64 { return float64(C.mmw_total_mass(m.h.m)) }

// CtrlRange returns the actuators' control bounds, ±Inf for unlimited
// actuators.
func (m *Model) CtrlRange() (lo, hi []float64) {
	lo, hi = make([]float64, m.NU), make([]float64, m.NU)
	limited := unsafe.Slice((*C.mjtByte)(unsafe.Pointer(m.h.m.actuator_ctrllimited)), m.NU)
	r := unsafe.Slice((*float64)(unsafe.Pointer(m.h.m.actuator_ctrlrange)), 2*m.NU)
	for i := range lo {
		if limited[i] != 0 {
			lo[i], hi[i] = r[2*i], r[2*i+1]
		} else {
			lo[i], hi[i] = math.Inf(-1), math.Inf(1)
		}
	}
	return lo, hi
}

// QPos0 returns the model's reference positions (qpos0), the state Reset
// starts from before noise.
func (m *Model) QPos0() []float64 {
	return append([]float64(nil), unsafe.Slice((*float64)(unsafe.Pointer(m.h.m.qpos0)), m.NQ)...)
}

// Object kinds for ID lookups.
const (
	objBody = C.mjOBJ_BODY
	objSite = C.mjOBJ_SITE
)

// BodyID returns the index of the named body.
func (m *Model) BodyID(name string) (int, error) { return m.id(objBody, "body", name) }

// SiteID returns the index of the named site.
func (m *Model) SiteID(name string) (int, error) { return m.id(objSite, "site", name) }

func (m *Model) id(kind C.int, what, name string) (int, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	id := int(C.mmw_name2id(m.h.m, kind, cn))
	if id < 0 {
		return 0, fmt.Errorf("mujoco: model has no %s named %q", what, name)
	}
	return id, nil
}

// Sim is a simulation of a model: one mjData. A Sim is not safe for
// concurrent use; use Clone to get one per goroutine.
type Sim struct {
	Model *Model
	h     *dataHandle
	// Views into the C state arrays, valid until Close.
	qpos, qvel, act, warm []float64
}

type dataHandle struct {
	once  sync.Once
	d     *C.mjData
	model *modelHandle
}

func (h *dataHandle) free() {
	h.once.Do(func() {
		C.mmw_delete_data(h.d)
		h.d = nil
		h.model.mu.Lock()
		h.model.sims--
		h.model.mu.Unlock()
	})
}

// NewSim returns a simulation of m in its reference state.
func (m *Model) NewSim() (*Sim, error) {
	m.h.mu.Lock()
	if m.h.closed {
		m.h.mu.Unlock()
		return nil, ErrClosed
	}
	m.h.sims++
	m.h.mu.Unlock()
	// The error text is thread-local in C: a cgo call keeps its OS thread,
	// but two calls need not share one, so the goroutine stays on its
	// thread until the message, if any, is read.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d := C.mmw_make_data(m.h.m)
	if d == nil {
		m.h.mu.Lock()
		m.h.sims--
		m.h.mu.Unlock()
		return nil, &Error{Op: "make data", Msg: C.GoString(C.mmw_error())}
	}
	h := &dataHandle{d: d, model: m.h}
	s := &Sim{Model: m, h: h}
	s.qpos = unsafe.Slice((*float64)(unsafe.Pointer(d.qpos)), m.NQ)
	s.qvel = unsafe.Slice((*float64)(unsafe.Pointer(d.qvel)), m.NV)
	if m.NA > 0 {
		s.act = unsafe.Slice((*float64)(unsafe.Pointer(d.act)), m.NA)
	}
	s.warm = unsafe.Slice((*float64)(unsafe.Pointer(d.qacc_warmstart)), m.NV)
	runtime.AddCleanup(s, func(h *dataHandle) { h.free() }, h)
	if err := s.Forward(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close frees the simulation's C memory. Later calls return ErrClosed.
func (s *Sim) Close() error {
	if s.h.d == nil {
		return nil
	}
	s.h.free()
	s.qpos, s.qvel, s.act, s.warm = nil, nil, nil, nil
	return nil
}

func (s *Sim) live() error {
	if s.h.d == nil {
		return ErrClosed
	}
	return nil
}

// QPos and QVel return views of the generalised positions and velocities;
// writes change the simulation (call Forward before reading positions
// derived from them). The views are invalid after Close.
func (s *Sim) QPos() []float64 { return s.qpos }

// QVel returns a view of the generalised velocities; see QPos.
func (s *Sim) QVel() []float64 { return s.qvel }

// Time is the simulation time in seconds.
func (s *Sim) Time() float64 { return float64(s.h.d.time) }

// StateSize is the length of the slices State and SetState use.
func (s *Sim) StateSize() int { return 1 + s.Model.NQ + 2*s.Model.NV + s.Model.NA }

// State appends to dst the simulation's complete dynamic state — time,
// qpos, qvel, act and the constraint solver's warm start — from which
// SetState reproduces the next steps bit for bit.
func (s *Sim) State(dst []float64) []float64 {
	dst = append(dst, float64(s.h.d.time))
	dst = append(dst, s.qpos...)
	dst = append(dst, s.qvel...)
	dst = append(dst, s.act...)
	return append(dst, s.warm...)
}

// SetState restores a state written by State and recomputes positions.
func (s *Sim) SetState(st []float64) error {
	if err := s.live(); err != nil {
		return err
	}
	if len(st) != s.StateSize() {
		return fmt.Errorf("mujoco: state has %d values, want %d", len(st), s.StateSize())
	}
	s.setState(st)
	return s.Forward()
}

// setState copies a state in without recomputing derived quantities:
// the next step recomputes them.
func (s *Sim) setState(st []float64) {
	s.h.d.time = C.mjtNum(st[0])
	st = st[1:]
	st = st[copy(s.qpos, st):]
	st = st[copy(s.qvel, st):]
	st = st[copy(s.act, st):]
	copy(s.warm, st)
}

// Forward recomputes the quantities derived from the state (positions,
// velocities, forces) without advancing time.
func (s *Sim) Forward() error {
	if err := s.live(); err != nil {
		return err
	}
	runtime.LockOSThread() // for the error text: see NewSim
	defer runtime.UnlockOSThread()
	if C.mmw_forward(s.Model.h.m, s.h.d) != C.mmOK {
		return &Error{Op: "forward", Msg: C.GoString(C.mmw_error())}
	}
	return nil
}

// SubtreeCOM is the centre of mass of body and its descendants, in world
// coordinates, as of the last forward pass (Forward, or a step's).
func (s *Sim) SubtreeCOM(body int) ([3]float64, error) {
	if err := s.live(); err != nil {
		return [3]float64{}, err
	}
	if body < 0 || body >= int(s.Model.h.m.nbody) {
		return [3]float64{}, fmt.Errorf("mujoco: body %d of %d", body, int(s.Model.h.m.nbody))
	}
	p := unsafe.Slice((*float64)(unsafe.Pointer(s.h.d.subtree_com)), 3*int(s.Model.h.m.nbody))
	return [3]float64{p[3*body], p[3*body+1], p[3*body+2]}, nil
}

// Reset puts the simulation in the model's reference state.
func (s *Sim) Reset() error {
	if err := s.live(); err != nil {
		return err
	}
	copy(s.qpos, unsafe.Slice((*float64)(unsafe.Pointer(s.Model.h.m.qpos0)), s.Model.NQ))
	clear(s.qvel)
	clear(s.act)
	clear(s.warm)
	s.h.d.time = 0
	return s.Forward()
}

// Clone returns a new simulation in the same state as s.
func (s *Sim) Clone() (*Sim, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	c, err := s.Model.NewSim()
	if err != nil {
		return nil, err
	}
	c.CopyState(s)
	return c, c.Forward()
}

// CopyState sets s to the state of o, a simulation of the same model.
func (s *Sim) CopyState(o *Sim) {
	s.h.d.time = o.h.d.time
	copy(s.qpos, o.qpos)
	copy(s.qvel, o.qvel)
	copy(s.act, o.act)
	copy(s.warm, o.warm)
}

var warningNames = map[C.int]string{
	C.mjWARN_BADQPOS:     "NaN or huge value in qpos",
	C.mjWARN_BADQVEL:     "NaN or huge value in qvel",
	C.mjWARN_BADQACC:     "NaN or huge value in qacc",
	C.mjWARN_BADCTRL:     "NaN or huge value in ctrl",
	C.mjWARN_CONTACTFULL: "contact list full (raise nconmax)",
	C.mjWARN_CNSTRFULL:   "constraint list full (raise njmax)",
}

// UnstableError reports a step that MuJoCo flagged as invalid. MuJoCo
// resets the simulation in that case, so its state is no longer the
// trajectory's.
type UnstableError struct {
	Step    int // environment step of a rollout; 0 for a single step
	Warning string
}

func (e *UnstableError) Error() string {
	return fmt.Sprintf("mujoco: simulation unstable at step %d: %s; the simulation was reset", e.Step, e.Warning)
}

func (s *Sim) result(r C.int, warning C.int, step int) error {
	switch r {
	case C.mmOK:
		return nil
	case C.mmUnstable:
		return &UnstableError{Step: step, Warning: warningNames[warning]}
	}
	return &Error{Op: fmt.Sprintf("step %d", step), Msg: C.GoString(C.mmw_error())}
}

// Step applies controls ctrl (NU values) for frameSkip substeps in one call
// into C. With kinematics set, body and site positions are brought up to
// date with the final state (MuJoCo's step leaves them one substep behind).
func (s *Sim) Step(ctrl []float64, frameSkip int, kinematics bool) error {
	if err := s.live(); err != nil {
		return err
	}
	if len(ctrl) != s.Model.NU {
		return fmt.Errorf("mujoco: %d controls, the model has %d actuators", len(ctrl), s.Model.NU)
	}
	if frameSkip < 1 {
		return fmt.Errorf("mujoco: frame skip %d, want at least 1", frameSkip)
	}
	var pc *C.double
	if len(ctrl) > 0 {
		pc = (*C.double)(unsafe.Pointer(&ctrl[0]))
	}
	var w C.int
	k := C.int(0)
	if kinematics {
		k = 1
	}
	runtime.LockOSThread() // for the error text: see NewSim
	defer runtime.UnlockOSThread()
	r := C.mmw_step(s.Model.h.m, s.h.d, pc, C.int(frameSkip), k, &w)
	return s.result(r, w, 0)
}

// RecordWidth is the number of values Rollout records per step for the
// given numbers of bodies and sites.
func (s *Sim) RecordWidth(bodies, sites int) int {
	return s.Model.NQ + s.Model.NV + 3*bodies + 3*sites
}

// Rollout runs horizon environment steps of frameSkip substeps, with
// controls ctrl (horizon×NU), in one call into C. After each step it
// records qpos, qvel and the world positions of the listed bodies (their
// frames' origins) and sites into rec (horizon×RecordWidth).
func (s *Sim) Rollout(ctrl []float64, horizon, frameSkip int, bodies, sites []int32, rec []float64) error {
	if err := s.live(); err != nil {
		return err
	}
	if horizon < 1 || frameSkip < 1 {
		return fmt.Errorf("mujoco: rollout of %d steps of %d substeps", horizon, frameSkip)
	}
	if len(ctrl) < horizon*s.Model.NU || len(rec) < horizon*s.RecordWidth(len(bodies), len(sites)) {
		return fmt.Errorf("mujoco: rollout buffers too short for %d steps", horizon)
	}
	var pc, pr *C.double
	if len(ctrl) > 0 {
		pc = (*C.double)(unsafe.Pointer(&ctrl[0]))
	}
	pr = (*C.double)(unsafe.Pointer(&rec[0]))
	var pb, ps *C.int
	// int32 is C's int on every platform cgo builds this for.
	if len(bodies) > 0 {
		pb = (*C.int)(unsafe.Pointer(&bodies[0]))
	}
	if len(sites) > 0 {
		ps = (*C.int)(unsafe.Pointer(&sites[0]))
	}
	var w, failed C.int
	runtime.LockOSThread() // for the error text: see NewSim
	defer runtime.UnlockOSThread()
	r := C.mmw_rollout(s.Model.h.m, s.h.d, pc, C.int(horizon), C.int(frameSkip), pb, C.int(len(bodies)), ps, C.int(len(sites)), pr, &w, &failed)
	return s.result(r, w, int(failed))
}

// BodyPos returns the world position of a body's frame.
func (s *Sim) BodyPos(id int) [3]float64 {
	p := unsafe.Slice((*float64)(unsafe.Pointer(s.h.d.xpos)), 3*(id+1))
	return [3]float64{p[3*id], p[3*id+1], p[3*id+2]}
}

// SitePos returns the world position of a site.
func (s *Sim) SitePos(id int) [3]float64 {
	p := unsafe.Slice((*float64)(unsafe.Pointer(s.h.d.site_xpos)), 3*(id+1))
	return [3]float64{p[3*id], p[3*id+1], p[3*id+2]}
}
