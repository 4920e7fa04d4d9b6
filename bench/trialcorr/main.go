// Command trialcorr relates reward to log-likelihood over the models of a
// range of PETS trials in a finished likelihood-vs-reward study — the
// models late in their runs, say, where a study's report takes them all:
//
//	go run ./bench/trialcorr runs/study-cheetah-fine-long/table.csv 16 30
//
// For each dataset in the table it prints the models counted, Pearson's ρ
// with its 95% bootstrap interval and Spearman's ρ, as the report does
// (its intervals drawn from another stream, so they differ in the last
// digit).
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/mismatch-rl/mismatch/study/stats"
)

func main() {
	log.SetFlags(0)
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: trialcorr TABLE.csv FIRST LAST (trials, inclusive)")
	}
	flag.Parse()
	if flag.NArg() != 3 {
		flag.Usage()
		os.Exit(2)
	}
	first, err1 := strconv.Atoi(flag.Arg(1))
	last, err2 := strconv.Atoi(flag.Arg(2))
	if err1 != nil || err2 != nil || first > last {
		log.Fatalf("trialcorr: trials %q to %q: want two whole numbers, the first at most the second", flag.Arg(1), flag.Arg(2))
	}
	path := flag.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	if len(recs) < 2 {
		log.Fatalf("%s: no models", path)
	}
	col := map[string]int{}
	var datasets []string
	for i, h := range recs[0] {
		col[h] = i
		if d, ok := strings.CutPrefix(h, "loglik_"); ok {
			datasets = append(datasets, d)
		}
	}
	for _, need := range []string{"trial", "reward_mean", "error"} {
		if _, ok := col[need]; !ok {
			log.Fatalf("%s: no %s column (a likelihood-vs-reward study's table.csv?)", path, need)
		}
	}
	for _, d := range datasets {
		var x, y []float64
		for _, r := range recs[1:] {
			trial, err := strconv.Atoi(r[col["trial"]])
			if err != nil || trial < first || trial > last || r[col["error"]] != "" {
				continue
			}
			ll, err1 := strconv.ParseFloat(r[col["loglik_"+d]], 64)
			rw, err2 := strconv.ParseFloat(r[col["reward_mean"]], 64)
			if err1 != nil || err2 != nil || math.IsNaN(ll) || math.IsInf(ll, 0) || math.IsNaN(rw) {
				continue
			}
			x, y = append(x, ll), append(y, rw)
		}
		p, err := stats.Pearson(x, y)
		if err != nil {
			fmt.Printf("%-12s trials %d–%d: %d models, %v\n", d, first, last, len(x), err)
			continue
		}
		s, _ := stats.Spearman(x, y)
		iv, err := stats.Bootstrap(stats.Pearson, x, y, 2000, 0.95, 1)
		ci := "no interval"
		if err == nil {
			ci = fmt.Sprintf("[%.2f, %.2f]", iv.Low, iv.High)
		}
		fmt.Printf("%-12s trials %d–%d: %d models, Pearson %.2f %s, Spearman %.2f\n", d, first, last, len(x), p, ci, s)
	}
}
