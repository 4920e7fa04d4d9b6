package study

import (
	"encoding/csv"
	"io"
	"math"
	"slices"
	"strconv"
)

// EpochsFile is a loss-vs-reward study's summary per training seed.
const EpochsFile = "epochs.csv"

// EpochSummary is one training seed of a loss-vs-reward study: the epoch
// whose checkpoint earned the most reward, and for each dataset the epoch
// whose checkpoint had the lowest NLL (the one a likelihood-based early
// stop would keep) with the reward that checkpoint earned. The paper's
// claim is that the two epochs differ and that the loss goes on falling
// after the reward stops rising.
type EpochSummary struct {
	Seed           int
	BestEpoch      int
	BestReward     float64
	LowestNLLEpoch map[string]int
	RewardAtLowest map[string]float64
}

// Epochs summarises each training seed of a loss-vs-reward study, in
// seed order; checkpoints without a reward (a failed cell) do not count.
func (r *Results) Epochs() []EpochSummary {
	var seeds []int
	for _, m := range r.Members {
		if !slices.Contains(seeds, m.Seed) {
			seeds = append(seeds, m.Seed)
		}
	}
	slices.Sort(seeds)
	out := make([]EpochSummary, 0, len(seeds))
	for _, seed := range seeds {
		e := EpochSummary{Seed: seed, BestReward: math.NaN(), LowestNLLEpoch: map[string]int{}, RewardAtLowest: map[string]float64{}}
		lowest := map[string]float64{}
		for i, m := range r.Members {
			c := r.Cells[i]
			if m.Seed != seed || math.IsNaN(c.RewardMean) {
				continue
			}
			if math.IsNaN(e.BestReward) || c.RewardMean > e.BestReward {
				e.BestEpoch, e.BestReward = m.Epoch, c.RewardMean
			}
			for _, d := range r.Datasets {
				v := c.NLL[d]
				if math.IsNaN(v) {
					continue
				}
				if best, ok := lowest[d]; !ok || v < best {
					lowest[d] = v
					e.LowestNLLEpoch[d], e.RewardAtLowest[d] = m.Epoch, c.RewardMean
				}
			}
		}
		out = append(out, e)
	}
	return out
}

func (r *Results) writeEpochs(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"seed", "best_reward_epoch", "best_reward"}
	for _, d := range r.Datasets {
		head = append(head, "lowest_nll_epoch_"+d, "reward_at_lowest_nll_"+d)
	}
	cw.Write(head)
	for _, e := range r.Epochs() {
		row := []string{strconv.Itoa(e.Seed), strconv.Itoa(e.BestEpoch), fmtNum(e.BestReward)}
		for _, d := range r.Datasets {
			ep, ok := e.LowestNLLEpoch[d]
			if !ok {
				row = append(row, "", "")
				continue
			}
			row = append(row, strconv.Itoa(ep), fmtNum(e.RewardAtLowest[d]))
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}
