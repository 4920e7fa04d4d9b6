// Package provenance records where a run's numbers came from: the program
// (version and VCS revision from the build), the command line, when it
// started and how long it ran, and the machine (CPU, cores, the
// matrix-multiply backend, the planning precision). Every run, study and
// attack directory keeps a list of the invocations that wrote to it, and
// its report shows them.
package provenance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// File is the name of a directory's provenance list.
const File = "provenance.json"

// Record is one invocation.
type Record struct {
	Version   string    `json:"version"`
	Revision  string    `json:"revision"` // VCS revision, "+dirty" when the tree had changes
	Go        string    `json:"go"`
	Command   []string  `json:"command"`
	Start     time.Time `json:"start"`
	WallSec   float64   `json:"wall_s"`
	CPU       string    `json:"cpu"`
	Cores     int       `json:"cores"`
	BLAS      string    `json:"blas"`
	Precision string    `json:"precision,omitempty"`
	Status    string    `json:"status"` // running, done, stopped or failed
}

// Version is the program's version and VCS revision, from its build.
func Version() (version, revision string) {
	version, revision = "(unknown)", "(unknown)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	version = bi.Main.Version
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		revision += "+dirty"
	}
	return
}

// New starts a record of this process for the command line args, planning
// in precision (empty when none applies).
func New(args []string, precision string) Record {
	v, r := Version()
	return Record{Version: v, Revision: r, Go: runtime.Version(), Command: append([]string(nil), args...), Start: time.Now().UTC(),
		CPU: CPU(), Cores: runtime.NumCPU(), BLAS: kernel.BLAS(), Precision: precision, Status: "running"}
}

// CPU is the processor's model name.
func CPU() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Read returns a directory's records (none when it has no list).
func Read(dir string) ([]Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, File))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []Record
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, File), err)
	}
	return rs, nil
}

// Save adds r to dir's list, or replaces the record of the same start and
// command (a record saved at the start and again at the end), atomically.
func Save(dir string, r Record) error {
	rs, err := Read(dir)
	if err != nil {
		rs = nil // a damaged list is replaced
	}
	replaced := false
	for i := range rs {
		if rs[i].Start.Equal(r.Start) && strings.Join(rs[i].Command, "\x00") == strings.Join(r.Command, "\x00") {
			rs[i], replaced = r, true
		}
	}
	if !replaced {
		rs = append(rs, r)
	}
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(filepath.Join(dir, File), append(b, '\n'))
}

// Finish stamps r with its wall time and status.
func (r *Record) Finish(status string) {
	r.WallSec = time.Since(r.Start).Seconds()
	r.Status = status
}

// Track saves r in dir now and again every interval with the wall time so
// far, so that an invocation killed without warning (a batch job's time
// limit, a machine taken back) still leaves how long it ran. The returned
// end stops the saving, stamps r with its final wall time and status (see
// Finish) and saves it a last time. Errors of the periodic saves are
// dropped: the record is a courtesy and must not stop the run.
func Track(dir string, r Record, every time.Duration) (end func(status string) error) {
	// r is touched by one goroutine at a time: this one, then the
	// ticker's until end stops it, then end's caller.
	save := func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return Save(dir, r)
	}
	_ = save()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.WallSec = time.Since(r.Start).Seconds()
				_ = save()
			}
		}
	}()
	return func(status string) error {
		close(stop)
		<-stopped
		r.Finish(status)
		return save()
	}
}

// Rows formats records for a report's table, with its header.
func Rows(rs []Record) ([]string, [][]string) {
	head := []string{"started (UTC)", "wall", "status", "command", "version", "CPU", "cores", "BLAS", "precision"}
	var rows [][]string
	for _, r := range rs {
		rows = append(rows, []string{r.Start.Format("2006-01-02 15:04:05"), time.Duration(r.WallSec * float64(time.Second)).Round(time.Second).String(), r.Status,
			strings.Join(r.Command, " "), r.Version + " " + r.Revision + " " + r.Go, r.CPU, fmt.Sprint(r.Cores), r.BLAS, r.Precision})
	}
	return head, rows
}
