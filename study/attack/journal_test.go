package attack

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestJournalKeepsOnlyFiniteNumbers: JSON cannot carry ±Inf or NaN, so a
// candidate or a final measurement holding one is not recorded (and would
// be computed again) rather than failing the run; what is recorded reads
// back, and a journal of another key or a damaged one is handled.
func TestJournalKeepsOnlyFiniteNumbers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	j, err := openJournal(dir, "k1")
	if err != nil {
		t.Fatal(err)
	}
	z1, z2 := []float64{0.1, -0.2}, []float64{0.1, -0.25}
	for _, c := range []struct {
		z []float64
		f float64
	}{{z1, -12.5}, {z2, math.Inf(1)}, {[]float64{3}, math.NaN()}} {
		if err := j.recordCandidate(c.z, c.f); err != nil {
			t.Fatal(err)
		}
	}
	good := finalRecord{Score: Score{NLL: -3, Rewards: []float64{1, 2}, RewardMean: 1.5, RewardStd: 0.5}, Observations: [][]float32{{1, 2}}}
	bad := good
	bad.Observations = [][]float32{{1, float32(math.NaN())}}
	if err := j.recordFinal("m1", good); err != nil {
		t.Fatal(err)
	}
	if err := j.recordFinal("m2", bad); err != nil {
		t.Fatal(err)
	}
	back, err := openJournal(dir, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := back.candidate(z1); !ok || f != -12.5 {
		t.Fatalf("candidate read back as %g, %t", f, ok)
	}
	if _, ok := back.candidate(z2); ok {
		t.Fatal("an infinite objective was kept")
	}
	if r, ok := back.final("m1"); !ok || r.Score.RewardMean != 1.5 || r.Observations[0][1] != 2 {
		t.Fatalf("final measurement read back as %+v, %t", r, ok)
	}
	if _, ok := back.final("m2"); ok {
		t.Fatal("a measurement with NaN was kept")
	}
	if other, err := openJournal(dir, "k2"); err != nil || len(other.rec.Candidates) != 0 {
		t.Fatalf("another key's journal: %v, %d candidates", err, len(other.rec.Candidates))
	}
	os.WriteFile(filepath.Join(dir, JournalFile), []byte("{\"key\": \"k1\", \"candid"), 0o644)
	if _, err := openJournal(dir, "k1"); err == nil {
		t.Fatal("a damaged journal was read")
	}
}
