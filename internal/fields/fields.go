// Package fields collects what is wrong with a configuration, each problem
// named by the YAML path of its field, so that one Validate can report
// every bad field at once and a configuration that embeds another can
// report the inner one's problems under its own path.
package fields

import (
	"errors"
	"fmt"
)

// Error is a problem with one field.
type Error struct {
	Field string // YAML path, for example planner.alpha
	Err   error
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors gathers field errors; its zero value is ready to use.
type Errors struct{ list []error }

// Add records that field is wrong, with a message.
func (e *Errors) Add(field, format string, args ...any) {
	e.list = append(e.list, &Error{Field: field, Err: fmt.Errorf(format, args...)})
}

// Nest records the errors of a nested configuration under prefix: a field
// error f becomes prefix.f; any other error is put on prefix itself.
func (e *Errors) Nest(prefix string, err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, inner := range j.Unwrap() {
			e.Nest(prefix, inner)
		}
		return
	}
	var fe *Error
	if errors.As(err, &fe) {
		name := prefix
		switch {
		case prefix == "":
			name = fe.Field
		case fe.Field != "":
			name = prefix + "." + fe.Field
		}
		e.list = append(e.list, &Error{Field: name, Err: fe.Err})
		return
	}
	e.list = append(e.list, &Error{Field: prefix, Err: err})
}

// Err returns the errors gathered, joined (one per line), or nil.
func (e *Errors) Err() error { return errors.Join(e.list...) }

// Between reports whether x lies in [lo, hi]; NaN never does.
func Between(x, lo, hi float64) bool { return x >= lo && x <= hi }
