package pets

import (
	"bytes"
	"math"
	"testing"
)

// FuzzReadTrials: any text gives rows or an error; rows written back read
// the same.
func FuzzReadTrials(f *testing.F) {
	var b bytes.Buffer
	WriteTrials(&b, []Trial{{Trial: 0, Kind: "random", Reward: -3, TrainLoss: math.NaN(), HoldOutNLL: math.NaN(), HoldOutMSE: math.NaN()},
		{Trial: 1, Kind: "mpc", Reward: 150.5, Steps: 200, Model: "models/trial_001.safetensors"}})
	f.Add(b.String())
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := ReadTrials(bytes.NewReader([]byte(in)))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteTrials(&out, rows); err != nil {
			t.Fatal(err)
		}
		again, err := ReadTrials(&out)
		if err != nil || len(again) != len(rows) {
			t.Fatalf("rows do not round-trip: %v", err)
		}
	})
}
