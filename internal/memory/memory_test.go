package memory

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]float64{"1000": 1000, "8G": 8 << 30, "8GiB": 8 << 30, "8gb": 8 << 30, "512M": 512 << 20, "1.5K": 1536, "2T": 2 << 40} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %g, %v; want %g", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "0", "8X", "nanG", "1e999"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestCheckNamesTheLargestPart(t *testing.T) {
	e := Estimate{{"model", 1 << 19}, {"planner.population", 15 << 30}, {"data", 1 << 30}}
	if err := e.Check(40<<30, "the limit"); err != nil {
		t.Fatal(err)
	}
	err := e.Check(16<<30, "this machine's memory")
	if err == nil {
		t.Fatal("32 GiB fit in 16 GiB")
	}
	msg := err.Error()
	if !strings.Contains(msg, "32.0 GiB") || !strings.Contains(msg, "16.0 GiB") || !strings.Contains(msg, "data") || strings.Index(msg, "planner.population") > strings.Index(msg, "data") {
		t.Fatalf("message %q", msg)
	}
	if strings.Contains(msg, "model") {
		t.Fatalf("a part under 1%% is listed: %q", msg)
	}
}

func TestMachine(t *testing.T) {
	if m := Machine(); m < 1<<26 {
		t.Fatalf("this machine has %s of memory?", Format(m))
	}
}
