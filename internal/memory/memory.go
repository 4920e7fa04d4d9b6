// Package memory estimates and bounds what a command will hold in memory,
// so that settings that cannot fit are refused, naming the setting, before
// anything is allocated — instead of the Go runtime's fatal out-of-memory
// error hours into a run.
package memory

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Part is one thing a command holds: what decides its size, and bytes.
// Bytes is a float64 so that absurd settings (10⁸ × 10⁹) do not overflow.
type Part struct {
	What  string // the settings that decide it, by their names
	Bytes float64
}

// Estimate is what a command will hold, part by part.
type Estimate []Part

// Total is the sum of the parts.
func (e Estimate) Total() float64 {
	var t float64
	for _, p := range e {
		t += p.Bytes
	}
	return t
}

// Headroom is how much more than the memory it holds live a Go program
// takes at its peak: the collector lets the heap grow to twice the live
// data before it collects (GOGC=100).
const Headroom = 2

// Check returns an error naming the largest parts when the total, with
// Headroom, exceeds limit bytes (where names what the limit is).
func (e Estimate) Check(limit float64, where string) error {
	total := e.Total() * Headroom
	if total <= limit && !math.IsNaN(total) {
		return nil
	}
	parts := append(Estimate(nil), e...)
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Bytes > parts[j].Bytes })
	var b strings.Builder
	fmt.Fprintf(&b, "these settings need about %s of memory; %s is %s", Format(total), where, Format(limit))
	for _, p := range parts {
		if p.Bytes*Headroom >= total/100 {
			fmt.Fprintf(&b, "\n  %s: %s", p.What, Format(p.Bytes*Headroom))
		}
	}
	return fmt.Errorf("%s", b.String())
}

// Format writes a byte count with a binary unit: 1.5 GiB.
func Format(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == len(units)-1 && b >= 1024 {
		return fmt.Sprintf("%.3g %s", b, units[i])
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// Parse reads a size such as 512MiB, 8G, 2.5GB or 1000000 (bytes). K, M,
// G and T are taken as binary units with or without "i" and "B", since
// that is how memory is sold.
func Parse(s string) (float64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("memory size %q: want a positive number with an optional unit (K, M, G, T), for example 8G", s)
	}
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("memory size %q: unknown unit %q (want K, M, G or T)", s, t[i:])
	}
	return v * mult, nil
}

// Machine returns the memory this process may use: the machine's physical
// memory, or its control group's limit where that is lower. It returns 0
// when neither can be read.
func Machine() float64 {
	var total float64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				fs := strings.Fields(rest)
				if len(fs) > 0 {
					if kb, err := strconv.ParseFloat(fs[0], 64); err == nil {
						total = kb * 1024
					}
				}
			}
		}
		f.Close()
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && v > 0 && (total == 0 || v < total) {
				total = v
			}
		}
	}
	return total
}
