package dirlock

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The lock is per open file, so a second process is needed to see it
// held: the test runs itself as that process.
func TestSecondProcessIsRefused(t *testing.T) {
	if dir := os.Getenv("DIRLOCK_CHILD"); dir != "" {
		if _, err := Acquire(dir, "run"); err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(0)
	}
	dir := t.TempDir()
	l, err := Acquire(dir, "run")
	if err != nil {
		t.Fatal(err)
	}
	child := func() (int, string) {
		cmd := exec.Command(os.Args[0], "-test.run=TestSecondProcessIsRefused")
		cmd.Env = append(os.Environ(), "DIRLOCK_CHILD="+dir)
		out, _ := cmd.Output()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := child()
	if code != 3 || !strings.Contains(out, "in use by another process") || !strings.Contains(out, "pid") {
		t.Fatalf("second process: exit %d, %q", code, out)
	}
	l.Release()
	if code, out := child(); code != 0 {
		t.Fatalf("after release: exit %d, %q", code, out)
	}
	// Other lock names in the same directory are independent.
	l2, _ := Acquire(dir, "run")
	defer l2.Release()
	if l3, err := Acquire(dir, "shard-1-of-2"); err != nil {
		t.Fatal(err)
	} else {
		l3.Release()
	}
}

func TestCheckOwned(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, files ...string) string {
		d := filepath.Join(root, name)
		os.MkdirAll(d, 0o755)
		for _, f := range files {
			if strings.HasSuffix(f, "/") {
				os.MkdirAll(filepath.Join(d, f), 0o755)
			} else {
				os.MkdirAll(filepath.Dir(filepath.Join(d, f)), 0o755)
				os.WriteFile(filepath.Join(d, f), []byte("x"), 0o644)
			}
		}
		return d
	}
	for _, tc := range []struct {
		dir string
		ok  bool
	}{
		{filepath.Join(root, "absent"), true},
		{mk("empty"), true},
		{mk("ours", "config.yaml", "report.html"), true},
		{mk("started", ".pets.lock", "models/"), true},
		{mk("user", "report.html"), false},
		{mk("user-models", "models/m.bin"), false},
		{mk("user-dir", "notes/"), false},
	} {
		err := CheckOwned(tc.dir, "config.yaml", "models")
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%t", tc.dir, err, tc.ok)
		}
	}
}
