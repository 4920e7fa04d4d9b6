package provenance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveKeepsOneRecordPerInvocation(t *testing.T) {
	dir := t.TempDir()
	a := New([]string{"mismatch", "pets", "--out", dir}, "fp32")
	if a.Status != "running" || a.Cores < 1 || a.CPU == "" || a.BLAS == "" || a.Go == "" {
		t.Fatalf("new record lacks the machine: %+v", a)
	}
	if err := Save(dir, a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	a.Finish("done")
	if err := Save(dir, a); err != nil {
		t.Fatal(err)
	}
	rs, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Status != "done" || rs[0].WallSec <= 0 || rs[0].Precision != "fp32" {
		t.Fatalf("start then finish of one invocation: %+v, want one finished record", rs)
	}
	// A second invocation (a resume) is added, not merged.
	b := New([]string{"mismatch", "pets", "--out", dir}, "")
	b.Start = a.Start.Add(time.Second)
	b.Finish("stopped")
	if err := Save(dir, b); err != nil {
		t.Fatal(err)
	}
	rs, _ = Read(dir)
	if len(rs) != 2 || rs[0].Status != "done" || rs[1].Status != "stopped" {
		t.Fatalf("after a resume: %+v", rs)
	}
	head, rows := Rows(rs)
	if len(rows) != 2 || len(rows[0]) != len(head) || !strings.Contains(rows[1][3], "pets --out") {
		t.Fatalf("rows %v %v", head, rows)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 1 {
		t.Fatalf("directory holds %v, want only %s", m, File)
	}
}

func TestDamagedListIsReportedAndReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, File)
	if err := os.WriteFile(path, []byte(`[{"version": `), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged list: %v, want an error naming %s", err, path)
	}
	r := New([]string{"mismatch"}, "")
	if err := Save(dir, r); err != nil {
		t.Fatal(err)
	}
	if rs, err := Read(dir); err != nil || len(rs) != 1 {
		t.Fatalf("after saving over a damaged list: %v, %v", rs, err)
	}
	if rs, err := Read(t.TempDir()); err != nil || rs != nil {
		t.Fatalf("directory without a list: %v, %v", rs, err)
	}
}

func TestTrackLeavesTheWallTimeOfAKilledRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made")
	r := New([]string{"mismatch", "study", "run"}, "")
	end := Track(dir, r, 5*time.Millisecond)
	// What a kill at this moment would leave: the last periodic save.
	var rs []Record
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if rs, err = Read(dir); err == nil && len(rs) == 1 && rs[0].WallSec >= 0.02 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(rs) != 1 || rs[0].Status != "running" || rs[0].WallSec < 0.02 {
		t.Fatalf("while running: %+v, want one running record whose wall time grows", rs)
	}
	if err := end("done"); err != nil {
		t.Fatal(err)
	}
	rs, err := Read(dir)
	if err != nil || len(rs) != 1 || rs[0].Status != "done" || rs[0].WallSec < 0.02 {
		t.Fatalf("after the end: %+v, %v", rs, err)
	}
	// Nothing is saved after the end.
	after, _ := os.ReadFile(filepath.Join(dir, File))
	time.Sleep(30 * time.Millisecond)
	if again, _ := os.ReadFile(filepath.Join(dir, File)); string(again) != string(after) {
		t.Fatal("the record changed after its end")
	}
}
