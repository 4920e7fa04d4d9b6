package pets

import (
	"bytes"
	"math"
	"testing"
)

// FuzzReadTrials: any text gives rows or an error; rows read back from
// what they wrote write the same text again.
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
		first := out.String()
		again, err := ReadTrials(&out)
		if err != nil {
			t.Fatalf("rows written do not read back: %v\n%s", err, first)
		}
		var second bytes.Buffer
		if err := WriteTrials(&second, again); err != nil {
			t.Fatal(err)
		}
		if second.String() != first {
			t.Fatalf("rows do not round-trip:\n%s\nthen\n%s", first, second.String())
		}
	})
}
