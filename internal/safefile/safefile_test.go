package safefile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	if err := WriteBytes(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// A failing writer leaves the old content and no temporary files.
	err := Write(p, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("interrupted")
	})
	if err == nil {
		t.Fatal("the fill error was lost")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("content after a failed write: %q", b)
	}
	if err := WriteBytes(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("content %q, want new", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestCleanRemovesOnlyTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	keep := []string{"a.csv", ".hidden", "sub/b.json", "x.tmp-1"}
	drop := []string{".a.csv.tmp-123", "sub/.b.json.tmp-9"}
	for _, f := range append(append([]string{}, keep...), drop...) {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	if err := Clean(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range keep {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s was removed", f)
		}
	}
	for _, f := range drop {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was left", f)
		}
	}
	os.WriteFile(filepath.Join(dir, ".c[1].json.tmp-5"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, ".d.json.tmp-5"), nil, 0o644)
	if err := CleanFor(filepath.Join(dir, "c[1].json")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".c[1].json.tmp-5")); err == nil {
		t.Error("CleanFor left its path's temporary file")
	}
	if _, err := os.Stat(filepath.Join(dir, ".d.json.tmp-5")); err != nil {
		t.Error("CleanFor removed another path's temporary file")
	}
	os.WriteFile(filepath.Join(dir, ".e.tmp-1"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "sub", ".f.tmp-1"), nil, 0o644)
	if err := CleanDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".e.tmp-1")); err == nil {
		t.Error("CleanDir left a temporary file")
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", ".f.tmp-1")); err != nil {
		t.Error("CleanDir went into a subdirectory")
	}
	if err := Clean(filepath.Join(dir, "absent")); err != nil {
		t.Fatal(err)
	}
}
