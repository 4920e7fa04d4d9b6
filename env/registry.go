package env

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

var registry = struct {
	sync.RWMutex
	tasks map[string]Task
}{tasks: map[string]Task{}}

// Register makes a task available by its name. It panics if the name is
// empty or taken: registration happens in package initialisation, where a
// clash is a programming error.
func Register(t Task) {
	registry.Lock()
	defer registry.Unlock()
	name := t.Name()
	if name == "" {
		panic("env: Register of a task with no name")
	}
	if _, dup := registry.tasks[name]; dup {
		panic("env: Register called twice for task " + name)
	}
	registry.tasks[name] = t
}

// Lookup returns the task registered under name.
func Lookup(name string) (Task, error) {
	registry.RLock()
	defer registry.RUnlock()
	if t, ok := registry.tasks[name]; ok {
		return t, nil
	}
	names := make([]string, 0, len(registry.tasks))
	for n := range registry.tasks {
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("env: unknown task %q (registered: %s)", name, strings.Join(names, ", "))
}

// Names lists the registered tasks in alphabetical order.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.tasks))
	for n := range registry.tasks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Base returns the name of the task whose settings the named task takes:
// the task it varies, if it is a registered Variant of one, otherwise name.
func Base(name string) string {
	registry.RLock()
	defer registry.RUnlock()
	if v, ok := registry.tasks[name].(Variant); ok && v.Base() != "" {
		return v.Base()
	}
	return name
}
