package data

import (
	"bytes"
	"os"
	"testing"

	"github.com/mismatch-rl/mismatch/env/classic"
)

// FuzzReadNPZ: any bytes give a buffer or an error, never a panic, a hang
// or an allocation beyond what the bytes can describe.
func FuzzReadNPZ(f *testing.F) {
	b, _ := RandomEpisodes(classic.PointMass, 1, 1)
	raw, _ := b.Subset([]int{0, 1, 2}).encodeNPZ()
	f.Add(raw)
	for _, p := range []string{"testdata/mbrl_lib.npz", "testdata/compressed_done.npz"} {
		if fixture, err := os.ReadFile(p); err == nil {
			f.Add(fixture)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		buf, err := readNPZ(bytes.NewReader(in), int64(len(in)))
		if err == nil {
			if err := buf.Validate(); err != nil {
				t.Fatalf("read an invalid buffer: %v", err)
			}
		}
	})
}
