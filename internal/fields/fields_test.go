package fields

import (
	"errors"
	"testing"
)

func TestNestNamesEveryField(t *testing.T) {
	var inner Errors
	inner.Add("alpha", "is %g", 2.0)
	inner.Add("horizon", "is %d", 0)
	var mid Errors
	mid.Nest("planner", inner.Err())
	mid.Nest("model", errors.New("plain"))
	var outer Errors
	outer.Nest("population.pets", mid.Err())
	outer.Add("seed", "bad")
	got := outer.Err().Error()
	want := "population.pets.planner.alpha: is 2\npopulation.pets.planner.horizon: is 0\npopulation.pets.model: plain\nseed: bad"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	var fe *Error
	if !errors.As(outer.Err(), &fe) || fe.Field != "population.pets.planner.alpha" {
		t.Fatalf("first field error %+v", fe)
	}
	var none Errors
	none.Nest("x", nil)
	if none.Err() != nil {
		t.Fatal("no errors gave an error")
	}
}
