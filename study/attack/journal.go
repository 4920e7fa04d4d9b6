package attack

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// The files where Run keeps what it has computed, in its directory, so that
// a run stopped part way (killed, or out of time) resumes from there: the
// lure-planted start model, and a journal of the search's scored
// candidates and the final measurements. A journal holds the digest of the
// config, model and held-out data it belongs to; another run's is
// replaced.
const (
	JournalFile = "journal.json"
	LureFile    = "lure.safetensors"
)

// journal is a run's record of finished work, written atomically after
// each new entry. Safe for concurrent use.
type journal struct {
	dir string
	mu  sync.Mutex
	rec journalRecord
}

type journalRecord struct {
	Key        string                 `json:"key"`
	Lure       *lureRecord            `json:"lure,omitempty"`
	Candidates map[string]float64     `json:"candidates"` // the digest of z's bits → objective
	Final      map[string]finalRecord `json:"final"`      // the model's digest → its measurement
}

type lureRecord struct {
	Weight float64 `json:"weight"`
	Lures  int     `json:"lures"`
	Model  string  `json:"model"` // LureFile's model's digest
}

type finalRecord struct {
	Score        Score       `json:"score"`
	Observations [][]float32 `json:"observations"`
}

// openJournal reads dir's journal if it belongs to key, else starts an
// empty one; with dir "" it keeps nothing.
func openJournal(dir, key string) (*journal, error) {
	j := &journal{dir: dir, rec: journalRecord{Key: key, Candidates: map[string]float64{}, Final: map[string]finalRecord{}}}
	if dir == "" {
		return j, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, err
	}
	var rec journalRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("attack: %s: %w (remove it to start the search again)", filepath.Join(dir, JournalFile), err)
	}
	if rec.Key != key {
		return j, nil // another run's: started again
	}
	if rec.Candidates != nil {
		j.rec.Candidates = rec.Candidates
	}
	if rec.Final != nil {
		j.rec.Final = rec.Final
	}
	j.rec.Lure = rec.Lure
	return j, nil
}

// save writes the journal; the caller holds mu.
func (j *journal) save() error {
	if j.dir == "" {
		return nil
	}
	b, err := json.Marshal(&j.rec)
	if err != nil {
		return err
	}
	return safefile.WriteBytes(filepath.Join(j.dir, JournalFile), b)
}

// candidate returns z's recorded objective.
func (j *journal) candidate(z []float64) (float64, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, ok := j.rec.Candidates[zKey(z)]
	return f, ok
}

// recordCandidate records z's objective f (JSON has no infinities: those
// are not kept, and are computed again).
func (j *journal) recordCandidate(z []float64, f float64) error {
	if !finite([]float64{f}) {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Candidates[zKey(z)] = f
	return j.save()
}

// lure returns the recorded lure-planted model, if its file is there and
// is the one recorded.
func (j *journal) lure(spec dynamics.Spec) (*dynamics.Model, *lureRecord) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.dir == "" || j.rec.Lure == nil {
		return nil, nil
	}
	m, err := dynamics.Load(filepath.Join(j.dir, LureFile), spec)
	if err != nil {
		return nil, nil
	}
	if d, err := m.Digest(); err != nil || d != j.rec.Lure.Model {
		return nil, nil
	}
	return m, j.rec.Lure
}

// recordLure saves the lure-planted model m and records it.
func (j *journal) recordLure(m *dynamics.Model, weight float64, lures int) error {
	if j.dir == "" {
		return nil
	}
	d, err := m.Digest()
	if err != nil {
		return err
	}
	if err := m.Save(filepath.Join(j.dir, LureFile)); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Lure = &lureRecord{Weight: weight, Lures: lures, Model: d}
	return j.save()
}

// final returns the recorded final measurement of the model of digest d.
func (j *journal) final(d string) (finalRecord, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	r, ok := j.rec.Final[d]
	return r, ok
}

// recordFinal records the final measurement of the model of digest d
// (one holding a non-finite number, which JSON cannot carry, is not kept
// and is measured again).
func (j *journal) recordFinal(d string, r finalRecord) error {
	ok := finite([]float64{r.Score.NLL, r.Score.RewardMean, r.Score.RewardStd}) && finite(r.Score.Rewards)
	for _, ep := range r.Observations {
		ok = ok && finite(ep)
	}
	if !ok {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Final[d] = r
	return j.save()
}

// zKey is the digest of z's float64 bits.
func zKey(z []float64) string {
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, z)
	return hex.EncodeToString(h.Sum(nil))
}

// runKey is the digest of what a run's results depend on: its config, the
// model attacked and the held-out data.
func runKey(c Config, model *dynamics.Model, held *data.Buffer) (string, error) {
	h := sha256.New()
	c.Workers = 0 // how many at once changes no result
	cj, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	d, err := model.Digest()
	if err != nil {
		return "", err
	}
	h.Write(cj)
	h.Write([]byte(d))
	writeBuffer(h, held)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeBuffer(h hash.Hash, b *data.Buffer) {
	binary.Write(h, binary.LittleEndian, []int64{int64(b.ObsDim), int64(b.ActDim), int64(b.Len())})
	for _, s := range [][]float32{b.Obs, b.Act, b.Next, b.Reward} {
		binary.Write(h, binary.LittleEndian, s)
	}
	for _, s := range [][]bool{b.Terminated, b.Truncated} {
		binary.Write(h, binary.LittleEndian, s)
	}
}
