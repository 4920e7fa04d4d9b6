package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// manifest is what the test reads of a Kubernetes object.
type manifest struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    int
		Parallelism    int
		Template       struct {
			Spec struct {
				Containers []struct{ Args []string }
			}
		}
	}
}

func readManifests(t *testing.T, path string) []manifest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []manifest
	dec := yaml.NewDecoder(f)
	for {
		var m manifest
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return ms
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ms = append(ms, m)
	}
}

// TestKubernetesJobsFollowTheSlurmFlow: the manifests hold the four steps
// of deploy/slurm/submit.sh in order; every command line is one this
// program accepts; the runs Job has one index per PETS run and both
// prepare steps take the same study arguments; each Indexed Job's
// completions are the N of its --shard auto/N. (kubectl cannot check the
// manifests without a server: it needs the server's API to validate.)
func TestKubernetesJobsFollowTheSlurmFlow(t *testing.T) {
	ms := readManifests(t, "../../deploy/kubernetes/study.yaml")
	var jobs []string
	args := map[string][]string{}
	for _, m := range ms {
		if m.Kind != "Job" {
			continue
		}
		jobs = append(jobs, m.Metadata.Name)
		if len(m.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", m.Metadata.Name, len(m.Spec.Template.Spec.Containers))
		}
		a := m.Spec.Template.Spec.Containers[0].Args
		args[m.Metadata.Name] = a
		shard := slices.Index(a, "--shard")
		if (m.Spec.CompletionMode == "Indexed") != (shard >= 0) {
			t.Fatalf("%s: Indexed %v, --shard in %v", m.Metadata.Name, m.Spec.CompletionMode == "Indexed", a)
		}
		if shard >= 0 {
			t.Setenv("JOB_COMPLETION_INDEX", "0")
			_, n, err := parseShard(a[shard+1])
			if err != nil || !strings.HasPrefix(a[shard+1], "auto/") || n != m.Spec.Completions || m.Spec.Parallelism > n {
				t.Errorf("%s: --shard %s with %d completions, parallelism %d (%v)", m.Metadata.Name, a[shard+1], m.Spec.Completions, m.Spec.Parallelism, err)
			}
		}
		// Every command line parses (with --help, cobra still checks the flags).
		if out, err := command(append(slices.Clone(a), "--help")...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %v\n%s", m.Metadata.Name, a, err, out)
		}
	}
	if want := []string{"mismatch-runs", "mismatch-prepare", "mismatch-cells", "mismatch-merge"}; !slices.Equal(jobs, want) {
		t.Fatalf("jobs %v, want %v", jobs, want)
	}
	runs, prep := args["mismatch-runs"], args["mismatch-prepare"]
	i := slices.Index(runs, "--shard")
	if !slices.Equal(slices.Delete(slices.Clone(runs), i, i+2), prep) {
		t.Errorf("the runs and prepare steps take different study arguments:\n%v\n%v", runs, prep)
	}
	// The runs Job has one index per PETS run of the study its arguments make.
	count := slices.Clone(prep)
	count[slices.Index(count, "--out")+1] = filepath.Join(t.TempDir(), "s")
	out, err := command(append(count, "--count-runs")...).Output()
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	for _, m := range ms {
		if m.Metadata.Name == "mismatch-runs" && (err != nil || n != m.Spec.Completions) {
			t.Errorf("the study has %d PETS runs (%v), the runs Job %d completions", n, err, m.Spec.Completions)
		}
	}
}

// TestKubernetesRunScript runs deploy/kubernetes/run.sh against a kubectl
// that records what it is asked: each step from the first asked is
// deleted, applied alone with the volume claim, and waited for, in order.
func TestKubernetesRunScript(t *testing.T) {
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	fake := "#!/bin/sh\necho \"kubectl $*\" >>" + log + "\ncase \" $* \" in *\" apply \"*) cat >>" + log + " ;; esac\n"
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from  string
		steps []string
	}{
		{"", []string{"runs", "prepare", "cells", "merge"}},
		{"cells", []string{"cells", "merge"}},
		{"prepare", []string{"prepare", "cells", "merge"}},
	} {
		os.Remove(log)
		cmd := exec.Command("sh", "../../deploy/kubernetes/run.sh", "ns1")
		if c.from != "" {
			cmd.Args = append(cmd.Args, c.from)
		}
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run.sh %s: %v\n%s", c.from, err, out)
		}
		b, _ := os.ReadFile(log)
		applied := strings.Split(string(b), "kubectl -n ns1 delete")[1:]
		if len(applied) != len(c.steps) {
			t.Fatalf("from %q: %d steps run:\n%s", c.from, len(applied), b)
		}
		for i, s := range c.steps {
			job := "mismatch-" + s
			var docs []manifest
			dec := yaml.NewDecoder(bytes.NewReader([]byte(applied[i][strings.Index(applied[i], "\n---")+1 : strings.LastIndex(applied[i], "kubectl -n ns1 wait")])))
			for {
				var m manifest
				if err := dec.Decode(&m); err != nil {
					break
				}
				if m.Kind != "" {
					docs = append(docs, m)
				}
			}
			if !strings.HasPrefix(applied[i], " --ignore-not-found job/"+job+"\n") || !strings.Contains(applied[i], "kubectl -n ns1 wait --for=condition=complete --timeout=72h job/"+job) ||
				len(docs) != 2 || docs[0].Kind != "PersistentVolumeClaim" || docs[1].Metadata.Name != job {
				t.Errorf("from %q, step %s:\n%s", c.from, s, applied[i])
			}
		}
	}
}
