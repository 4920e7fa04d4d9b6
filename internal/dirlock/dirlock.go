// Package dirlock guards a directory against two processes working in it at
// once by mistake: an advisory lock on a file, released when the process
// ends however it ends (even by SIGKILL), so no stale lock is left behind.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// Lock is a held lock.
type Lock struct{ f *os.File }

// Acquire takes the lock named name in dir, failing at once with an error
// that names the holder's process ID if another process holds it.
func Acquire(dir, name string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "."+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "?"
			}
			return nil, fmt.Errorf("%s is in use by another process (pid %s, lock %s); wait for it or use another directory", dir, pid, path)
		}
		return nil, err
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release drops the lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// CheckOwned refuses a directory that holds files of someone else's: it
// accepts a directory that does not exist, one that holds marker (a file
// this tool writes into every directory of the kind), and one that holds
// only lock files, temporary files of interrupted writes, and files or
// empty directories named in scaffold (what an interrupted start leaves). Anything else is a user's directory, which a
// run must not write into.
func CheckOwned(dir, marker string, scaffold ...string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == marker {
			return nil
		}
	}
	for _, e := range entries {
		name := e.Name()
		if (strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".lock") || safefile.IsTemp(name)) && e.Type().IsRegular() {
			continue // a lock, or a temporary file of an interrupted write
		}
		if slices.Contains(scaffold, name) {
			if e.Type().IsRegular() {
				continue
			}
			if sub, err := os.ReadDir(filepath.Join(dir, name)); e.IsDir() && err == nil && len(sub) == 0 {
				continue
			}
		}
		return fmt.Errorf("%s is not empty and holds no %s, so it is not a directory this tool made (it holds %s); choose a new or empty directory", dir, marker, name)
	}
	return nil
}
