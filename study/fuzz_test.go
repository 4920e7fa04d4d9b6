package study

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzStudyFiles: a study directory's spec, population table and cell
// files, whatever their content, are read or rejected without a panic.
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
		LoadSpec(d)
		readPopulation(d)
		readCell(d, "a")
		Analyse(d)
	})
}
