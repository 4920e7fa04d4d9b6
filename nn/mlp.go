package nn

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/rng"
)

// Activation is the nonlinearity of an MLP's hidden layers.
type Activation uint8

// The supported activations.
const (
	Swish     Activation = iota // x·sigmoid(x), also called SiLU (PETS, mbrl-lib)
	Tanh                        // the objective-mismatch paper's choice
	ReLU                        //
	LeakyReLU                   // slope Config.LeakySlope below zero
	Identity                    // no nonlinearity; a linear model
)

var activationNames = [...]string{Swish: "swish", Tanh: "tanh", ReLU: "relu", LeakyReLU: "leaky_relu", Identity: "identity"}

func (a Activation) String() string {
	if int(a) < len(activationNames) {
		return activationNames[a]
	}
	return fmt.Sprintf("Activation(%d)", a)
}

// ParseActivation returns the activation named s: swish (or silu), tanh,
// relu, leaky_relu or identity.
func ParseActivation(s string) (Activation, error) {
	switch strings.ToLower(s) {
	case "silu":
		return Swish, nil
	case "leakyrelu", "leaky-relu":
		return LeakyReLU, nil
	}
	for a, name := range activationNames {
		if strings.EqualFold(s, name) {
			return Activation(a), nil
		}
	}
	return 0, fmt.Errorf("unknown activation %q (want swish, tanh, relu, leaky_relu or identity)", s)
}

// MarshalText writes the activation's name, for configuration files.
func (a Activation) MarshalText() ([]byte, error) {
	if int(a) >= len(activationNames) {
		return nil, fmt.Errorf("nn: unknown activation %d", a)
	}
	return []byte(activationNames[a]), nil
}

// UnmarshalText reads an activation's name, as ParseActivation does; the
// empty text is the zero value, Swish (files of earlier versions hold it
// for models they do not use).
func (a *Activation) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*a = Swish
		return nil
	}
	v, err := ParseActivation(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func (a Activation) kernel() kernel.Act {
	switch a {
	case Swish:
		return kernel.Swish
	case Tanh:
		return kernel.Tanh
	case ReLU:
		return kernel.ReLU
	case LeakyReLU:
		return kernel.LeakyReLU
	}
	return kernel.Identity
}

// Config is the shape of an ensemble MLP.
type Config struct {
	Members    int        // ensemble size E
	In         int        // input width
	Hidden     []int      // hidden layer widths; none makes a linear model
	Out        int        // output width
	Activation Activation // of every hidden layer; the output layer is linear
	LeakySlope float32    // LeakyReLU's slope; 0 means 0.01
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.Members < 1 {
		errs = append(errs, fmt.Errorf("members is %d, want at least 1", c.Members))
	}
	if c.In < 1 {
		errs = append(errs, fmt.Errorf("input width is %d, want at least 1", c.In))
	}
	if c.Out < 1 {
		errs = append(errs, fmt.Errorf("output width is %d, want at least 1", c.Out))
	}
	for i, h := range c.Hidden {
		if h < 1 {
			errs = append(errs, fmt.Errorf("hidden layer %d has width %d, want at least 1", i, h))
		}
	}
	if int(c.Activation) >= len(activationNames) {
		errs = append(errs, fmt.Errorf("unknown activation %d", c.Activation))
	}
	if c.LeakySlope < 0 || math.IsNaN(float64(c.LeakySlope)) {
		errs = append(errs, fmt.Errorf("leaky slope is %g, want a non-negative number", c.LeakySlope))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nn: invalid config: %w", err)
	}
	return nil
}

func (c Config) slope() float32 {
	if c.LeakySlope == 0 {
		return 0.01
	}
	return c.LeakySlope
}

// widths returns the input, hidden and output widths in order.
func (c Config) widths() []int {
	w := make([]int, 0, len(c.Hidden)+2)
	w = append(w, c.In)
	w = append(w, c.Hidden...)
	return append(w, c.Out)
}

// Layer is one affine layer of every member: W is Members×In×Out and B is
// Members×Out. Both are views into the MLP's parameter vector.
type Layer struct {
	In, Out int
	W, B    []float32
}

// MemberW returns member e's In×Out weight matrix.
func (l Layer) MemberW(e int) []float32 { return l.W[e*l.In*l.Out : (e+1)*l.In*l.Out] }

// MemberB returns member e's bias vector.
func (l Layer) MemberB(e int) []float32 { return l.B[e*l.Out : (e+1)*l.Out] }

// Members is the number of ensemble members the layer holds.
func (l Layer) Members() int { return len(l.B) / l.Out }

// Index is the position, in the layer's part of the MLP's parameter
// vector (its weights, then its biases), of member e's weight from input i
// to output j; i = In gives output j's bias.
func (l Layer) Index(e, i, j int) int {
	if i < l.In {
		return (e*l.In+i)*l.Out + j
	}
	return len(l.W) + e*l.Out + j
}

// MLP is an ensemble of multilayer perceptrons with identical shapes.
type MLP struct {
	cfg    Config
	Layers []Layer
	params []float32
}

// New returns an MLP for cfg with weights drawn from a normal truncated at
// ±2σ, σ = 1/(2√fan_in), and zero biases (the PETS initialisation).
func New(cfg Config, src *rng.Source) (*MLP, error) {
	m, err := newZero(cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		std := float32(1 / (2 * math.Sqrt(float64(l.In))))
		src.FillTruncNormal(l.W, 0, std, 2)
	}
	return m, nil
}

// newZero returns an MLP for cfg with all parameters zero.
func newZero(cfg Config) (*MLP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Hidden = append([]int(nil), cfg.Hidden...)
	w := cfg.widths()
	n := 0
	for i := 0; i+1 < len(w); i++ {
		n += cfg.Members * (w[i]*w[i+1] + w[i+1])
	}
	m := &MLP{cfg: cfg, params: make([]float32, n)}
	m.Layers = layerViews(cfg, m.params)
	return m, nil
}

// layerViews slices a parameter-shaped vector into per-layer views; the
// gradient vector uses the same layout.
func layerViews(cfg Config, p []float32) []Layer {
	w := cfg.widths()
	ls := make([]Layer, len(w)-1)
	off := 0
	for i := range ls {
		in, out := w[i], w[i+1]
		nw, nb := cfg.Members*in*out, cfg.Members*out
		ls[i] = Layer{In: in, Out: out, W: p[off : off+nw : off+nw], B: p[off+nw : off+nw+nb : off+nw+nb]}
		off += nw + nb
	}
	return ls
}

// Config returns the MLP's shape.
func (m *MLP) Config() Config {
	c := m.cfg
	c.Hidden = append([]int(nil), c.Hidden...)
	return c
}

// Params returns all weights and biases as one vector, layer by layer,
// weights before biases. It is the MLP's storage, not a copy; optimisers
// update it in place and Pass's gradient has the same layout.
func (m *MLP) Params() []float32 { return m.params }

// Clone returns a deep copy of m.
func (m *MLP) Clone() *MLP {
	c, _ := newZero(m.cfg)
	copy(c.params, m.params)
	return c
}

// Range is where layer i's part of Params() lies: [lo, hi), its weights
// then its biases.
func (m *MLP) Range(i int) (lo, hi int) {
	for k := 0; k < i; k++ {
		lo += len(m.Layers[k].W) + len(m.Layers[k].B)
	}
	return lo, lo + len(m.Layers[i].W) + len(m.Layers[i].B)
}

// SetParams copies p into m's parameters; p must have len(m.Params()).
func (m *MLP) SetParams(p []float32) error {
	if len(p) != len(m.params) {
		return fmt.Errorf("nn: %d parameters given, the MLP has %d", len(p), len(m.params))
	}
	copy(m.params, p)
	return nil
}

// DecaySpans returns WeightDecay(lambda, ·)'s penalty as spans of Params()
// for Adam.StepDecayed: each layer's weights with its coefficient, layers
// with none left out (biases are not decayed).
func (m *MLP) DecaySpans(lambda []float32) ([]Decay, error) {
	if len(lambda) != len(m.Layers) {
		return nil, fmt.Errorf("nn: %d weight-decay coefficients for %d layers", len(lambda), len(m.Layers))
	}
	var spans []Decay
	off := 0
	for i, l := range m.Layers {
		if lambda[i] != 0 {
			spans = append(spans, Decay{Lo: off, Hi: off + len(l.W), Lambda: lambda[i]})
		}
		off += len(l.W) + len(l.B)
	}
	return spans, nil
}

// WeightDecay adds the gradient of Σ_l ½·λ_l·‖W_l‖² (weights of all members,
// not biases) to grad, which has Params's layout. lambda has one
// coefficient per layer. This is PETS's per-layer L2 term.
func (m *MLP) WeightDecay(lambda []float32, grad []float32) error {
	if len(lambda) != len(m.Layers) {
		return fmt.Errorf("nn: %d weight-decay coefficients for %d layers", len(lambda), len(m.Layers))
	}
	if len(grad) != len(m.params) {
		return fmt.Errorf("nn: gradient has %d elements, want %d", len(grad), len(m.params))
	}
	gl := layerViews(m.cfg, grad)
	for i, l := range m.Layers {
		if lambda[i] != 0 {
			kernel.Decay(gl[i].W, l.W, lambda[i])
		}
	}
	return nil
}
