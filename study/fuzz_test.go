package study

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzStudyFiles: a study directory's spec, population table and cell
// files, whatever their content, are read or rejected without a panic;
// what is read, written back and read again writes the same.
func FuzzStudyFiles(f *testing.F) {
	dir := f.TempDir()
	writePopulation(dir, []Member{{ID: "a", Model: "m", Class: "PE", Trial: 1}})
	os.MkdirAll(filepath.Join(dir, "cells"), 0o755)
	writeCell(dir, Cell{ID: "a", NLL: map[string]float64{"grid": -1}, Rewards: []float64{1, 2}})
	pop, _ := os.ReadFile(filepath.Join(dir, PopulationFile))
	cell, _ := os.ReadFile(CellPath(dir, "a"))
	f.Add("kind: likelihood-reward\ntask: pointmass\n", string(pop), string(cell))
	f.Fuzz(func(t *testing.T, spec, population, cellJSON string) {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "cells"), 0o755)
		os.WriteFile(filepath.Join(d, SpecFile), []byte(spec), 0o644)
		os.WriteFile(filepath.Join(d, PopulationFile), []byte(population), 0o644)
		os.WriteFile(CellPath(d, "a"), []byte(cellJSON), 0o644)
		if s, err := LoadSpec(d); err == nil {
			first := s.canonical()
			e := t.TempDir()
			os.WriteFile(filepath.Join(e, SpecFile), first, 0o644)
			again, err := LoadSpec(e)
			if err != nil || !bytes.Equal(again.canonical(), first) {
				t.Fatalf("spec does not round-trip: %v\n%s\nthen\n%s", err, first, again.canonical())
			}
		}
		if ms, err := readPopulation(d); err == nil {
			e := t.TempDir()
			if err := writePopulation(e, ms); err != nil {
				t.Fatal(err)
			}
			first, _ := os.ReadFile(filepath.Join(e, PopulationFile))
			again, err := readPopulation(e)
			if err != nil {
				t.Fatalf("population written does not read back: %v\n%s", err, first)
			}
			writePopulation(e, again)
			if second, _ := os.ReadFile(filepath.Join(e, PopulationFile)); !bytes.Equal(first, second) {
				t.Fatalf("population does not round-trip:\n%s\nthen\n%s", first, second)
			}
		}
		if c, err := readCell(d, "a"); err == nil {
			e := t.TempDir()
			os.MkdirAll(filepath.Join(e, "cells"), 0o755)
			if err := writeCell(e, c); err != nil {
				t.Fatal(err)
			}
			first, _ := os.ReadFile(CellPath(e, "a"))
			again, err := readCell(e, "a")
			if err != nil {
				t.Fatalf("cell written does not read back: %v\n%s", err, first)
			}
			writeCell(e, again)
			if second, _ := os.ReadFile(CellPath(e, "a")); !bytes.Equal(first, second) {
				t.Fatalf("cell does not round-trip:\n%s\nthen\n%s", first, second)
			}
		}
		Analyse(d)
	})
}
