package metrics

import (
	"context"
	"fmt"
	"slices"

	"github.com/mismatch-rl/mismatch/dynamics"
)

// openLoop scores long-horizon accuracy along recorded episodes: the
// state error after 1, 5 and planning-horizon steps of feeding the
// model's predictions back, and the error of the predicted return over
// the horizon (what a planner ranks action sequences by). All are
// measured from the same starts: the steps with a horizon's steps after
// them in their episode (or as many as the dataset's longest episode
// allows).
type openLoop struct{}

func init() { Register(openLoop{}) }

func (openLoop) Name() string { return "open-loop" }
func (openLoop) Doc() string {
	return "k-step open-loop state MSE (k = 1, 5, horizon) and the horizon's predicted-return error, along each dataset's episodes"
}

func (openLoop) Score(ctx context.Context, m *dynamics.Model, d *Data) (map[string]float64, error) {
	H := max(d.Horizon, 1)
	ks := []int{1}
	for _, k := range []int{5, H} {
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	out := map[string]float64{}
	for _, ds := range d.Datasets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The longest k this dataset's episodes allow.
		longest := 0
		for _, e := range ds.Buf.Episodes() {
			longest = max(longest, e.End-e.Start)
		}
		var k int
		for _, v := range ks {
			if v <= longest {
				k = max(k, v)
			}
		}
		if k == 0 {
			continue
		}
		ol, err := m.OpenLoop(ds.Buf, k, d.Task, d.Threads)
		if err != nil {
			return nil, err
		}
		for _, v := range ks {
			if v <= k {
				out[Column(fmt.Sprintf("open-loop-mse-%d", v), ds.Name)] = ol.StateMSE[v-1]
			}
		}
		if k == H {
			out[Column(fmt.Sprintf("open-loop-return-error-%d", H), ds.Name)] = ol.ReturnError
		}
	}
	return out, nil
}
