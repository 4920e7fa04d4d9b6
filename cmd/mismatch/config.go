package main

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// usageError marks bad input from the user: the command exits with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// loadConfig fills dst, a pointer to a config struct already holding the
// defaults, from a YAML file (optional) and key=value overrides applied
// after it. Unknown keys and values of the wrong type are errors naming the
// key (and the file's line). If dst has a Validate method, its findings are
// reported with the rest: every bad field at once.
func loadConfig(dst any, file string, overrides []string) error {
	var root yaml.Node
	def, err := yaml.Marshal(dst)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(def, &root); err != nil {
		return err
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return badInput("config: %v", err)
		}
		// Strictly, on its own, for messages with the file's lines.
		probe := reflect.New(reflect.TypeOf(dst).Elem()).Interface()
		var user yaml.Node
		if err := yaml.Unmarshal(raw, &user); err != nil {
			return badInput("config %s: %v", file, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(probe); err != nil && err != io.EOF {
			return badInput("config %s: %s", file, nameLines(err.Error(), &user))
		}
		if len(user.Content) > 0 {
			if user.Content[0].Kind != yaml.MappingNode {
				return badInput("config %s: the top level must be a mapping of keys to values", file)
			}
			merge(root.Content[0], user.Content[0])
		}
	}
	for _, o := range overrides {
		key, val, ok := strings.Cut(o, "=")
		if !ok || key == "" {
			return badInput("override %q: want key=value, for example planner.population=200", o)
		}
		if err := override(root.Content[0], dst, key, val); err != nil {
			return badInput("override %s: %v", key, err)
		}
	}
	var wrong []error
	checkNumbers(root.Content[0], reflect.TypeOf(dst).Elem(), "", &wrong)
	out, err := yaml.Marshal(&root)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return badInput("config: %v", err)
	}
	// Every bad field at once: numbers YAML would have truncated, then
	// what the configuration's own checks find.
	if v, ok := dst.(interface{ Validate() error }); ok {
		wrong = append(wrong, v.Validate())
	}
	if err := errors.Join(wrong...); err != nil {
		where := "invalid config"
		if file != "" {
			where += " (" + file + " and the arguments)"
		}
		return badInput("%s:\n%w", where, err)
	}
	return nil
}

// nameLines adds to yaml's "line N: …" messages the key found at line N,
// since its type errors name only the line.
func nameLines(msg string, doc *yaml.Node) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		var n int
		if _, err := fmt.Sscanf(t, "line %d:", &n); err != nil {
			continue
		}
		if path := keyAt(doc, n, nil); path != "" {
			lines[i] = strings.Replace(l, fmt.Sprintf("line %d:", n), fmt.Sprintf("line %d (%s):", n, path), 1)
		}
	}
	return strings.Join(lines, "\n")
}

// keyAt returns the dotted path of the mapping key on the given line.
func keyAt(n *yaml.Node, line int, path []string) string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return keyAt(n.Content[0], line, path)
	}
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := append(append([]string(nil), path...), k.Value)
		if k.Line == line {
			return strings.Join(p, ".")
		}
		if s := keyAt(v, line, p); s != "" {
			return s
		}
	}
	return ""
}

// merge copies src's keys into dst: mappings merge recursively, anything
// else replaces.
func merge(dst, src *yaml.Node) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := find(dst, k.Value)
		switch {
		case j < 0:
			dst.Content = append(dst.Content, k, v)
		case dst.Content[j+1].Kind == yaml.MappingNode && v.Kind == yaml.MappingNode:
			merge(dst.Content[j+1], v)
		default:
			dst.Content[j+1] = v
		}
	}
}

func find(m *yaml.Node, key string) int {
	if m.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// override sets the value at a dotted key path, checking that the key
// exists and that the value decodes into its field's type.
func override(root *yaml.Node, dst any, key, val string) error {
	path := strings.Split(key, ".")
	node := root
	for i, p := range path {
		if node.Kind == yaml.SequenceNode {
			// A list element, by index or by its name field.
			k := element(node, p)
			if k < 0 {
				return fmt.Errorf("%q: no element %q in this list (give an index or an element's name)", strings.Join(path[:i], "."), p)
			}
			if i == len(path)-1 {
				return errors.New("set fields of a list element, not the element")
			}
			node = node.Content[k]
			continue
		}
		j := find(node, p)
		if j < 0 {
			return fmt.Errorf("unknown key %q (known here: %s)", strings.Join(path[:i+1], "."), keys(node))
		}
		if i == len(path)-1 {
			var v yaml.Node
			if err := yaml.Unmarshal([]byte(val), &v); err != nil {
				return err
			}
			if len(v.Content) == 0 {
				return errors.New("empty value")
			}
			field, err := fieldType(reflect.TypeOf(dst).Elem(), path)
			if err != nil {
				return err
			}
			probe := reflect.New(field).Interface()
			if err := v.Content[0].Decode(probe); err != nil {
				return fmt.Errorf("%q is not a valid %s", val, field)
			}
			forgetLines(v.Content[0])
			node.Content[j+1] = v.Content[0]
			return nil
		}
		node = node.Content[j+1]
	}
	return nil
}

// forgetLines drops the line numbers of a value parsed from a key=value
// argument: they would name line 1 of no file.
func forgetLines(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		forgetLines(c)
	}
}

// element finds a list element by index or by the value of its name key.
func element(seq *yaml.Node, p string) int {
	if i, err := strconv.Atoi(p); err == nil {
		if i >= 0 && i < len(seq.Content) {
			return i
		}
		return -1
	}
	for i, e := range seq.Content {
		if j := find(e, "name"); j >= 0 && e.Content[j+1].Value == p {
			return i
		}
	}
	return -1
}

func keys(m *yaml.Node) string {
	var ks []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		ks = append(ks, m.Content[i].Value)
	}
	return strings.Join(ks, ", ")
}

// fieldType follows yaml tags from struct type t along path.
func fieldType(t reflect.Type, path []string) (reflect.Type, error) {
	for _, p := range path {
		if t.Kind() == reflect.Slice {
			t = t.Elem() // the element a list step selected
			continue
		}
		if t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("%s is not a section", p)
		}
		f, ok := yamlField(t, p)
		if !ok {
			return nil, fmt.Errorf("unknown key %q", p)
		}
		t = f.Type
	}
	return t, nil
}

// yamlField finds the field of struct type t that the YAML key name
// decodes into, looking into inlined structs too.
func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if tag[0] == "-" || !f.IsExported() {
			continue
		}
		if slices.Contains(tag[1:], "inline") && f.Type.Kind() == reflect.Struct {
			if g, ok := yamlField(f.Type, name); ok {
				return g, true
			}
			continue
		}
		key := tag[0]
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		if key == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkNumbers reports every value of n, a document for type t, that YAML
// would decode into a number field wrongly: a fraction, an exponent or a
// null in an integer field (YAML truncates 2.9 and 1e8 into integers
// without a word), or a null in a float field.
func checkNumbers(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	at := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := yamlField(t, n.Content[i].Value); ok {
				checkNumbers(n.Content[i+1], f.Type, at(n.Content[i].Value), errs)
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, e := range n.Content {
			checkNumbers(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!int" {
			*errs = append(*errs, fmt.Errorf("%s: %q is not an integer%s", path, n.Value, lineOf(n)))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			*errs = append(*errs, fmt.Errorf("%s: is empty, want a number%s", path, lineOf(n)))
		}
	}
}

func lineOf(n *yaml.Node) string {
	if n.Line > 0 {
		return fmt.Sprintf(" (line %d)", n.Line)
	}
	return ""
}
