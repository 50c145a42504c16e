package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a YAML duration written like 60s, 500ms or 15m.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

var durationType = reflect.TypeOf(Duration(0))

// ByteSize is a YAML size written like 20MB, 512KB or 1GB (powers of 1024)
// or a plain number of bytes.
type ByteSize int64

var byteSizeType = reflect.TypeOf(ByteSize(0))

func parseByteSize(s string) (ByteSize, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size")
	}
	return ByteSize(n * mult), nil
}

// decoder fills Go values from a YAML node tree strictly: unknown keys,
// wrong types and duplicate keys are problems, and every problem is kept
// with the line it was found on. It also remembers the line of each key so
// that later checks can point at them.
type decoder struct {
	file     string
	problems Problems
	lines    map[string]int // key path → line
}

func (d *decoder) addf(line int, key, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true/false"
	case "!!null":
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	switch {
	case v.Type() == durationType:
		if n.Kind != yaml.ScalarNode {
			d.addf(n.Line, path, "want a duration like 60s or 500ms, got %s", kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.addf(n.Line, path, "want a duration like 60s or 500ms, got %q", n.Value)
			return
		}
		v.SetInt(int64(dur))
	case v.Type() == byteSizeType:
		b, err := parseByteSize(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.addf(n.Line, path, "want a size like 20MB, 512KB or a number of bytes, got %s", kindName(n))
			return
		}
		v.SetInt(int64(b))
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.addf(n.Line, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.decode(item, s.Index(i), p)
		}
		v.Set(s)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		if n.Kind != yaml.MappingNode {
			d.addf(n.Line, path, "want a mapping of keys, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				d.addf(k.Line, path, "want a key, got %s", kindName(k))
				continue
			}
			if first, dup := seen[k.Value]; dup {
				d.addf(k.Line, p, "given twice (first on line %d)", first)
				continue
			}
			seen[k.Value] = k.Line
			d.lines[p] = k.Line
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, p)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.addf(n.Line, path, "want text, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case v.Kind() == reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.addf(n.Line, path, "want a whole number, got %s", kindName(n))
			return
		}
		v.SetInt(int64(i))
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.addf(n.Line, path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	default:
		panic("config: unsupported field type " + v.Type().String())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, path, "want a mapping of keys, got %s", kindName(n))
		return
	}
	fields := map[string]int{}
	var names []string
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if name != "" && name != "-" {
			fields[name] = i
			names = append(names, name)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.addf(k.Line, p, "given twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			d.addf(k.Line, p, "unknown key (known here: %s)", strings.Join(names, ", "))
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, v.Field(fi), p)
	}
}

// DecodeStrict decodes YAML text into the struct into points to, with the
// same strictness and messages as lockerd's config: unknown keys, wrong
// types and duplicate keys are problems naming name, the line and the key.
// It returns the line of each key path (for the caller's own checks) and
// what it found wrong. Empty values leave into's defaults.
func DecodeStrict(name string, raw []byte, into any) (map[string]int, Problems) {
	d := &decoder{file: name, lines: map[string]int{}}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&root); err != nil {
		msg := err.Error()
		line := 1
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		if errors.Is(err, io.EOF) {
			msg = "file is empty"
		}
		return nil, Problems{{File: name, Line: line, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
	}
	if len(root.Content) == 0 {
		return nil, Problems{{File: name, Line: 1, Msg: "file is empty"}}
	}
	d.decode(root.Content[0], reflect.ValueOf(into).Elem(), "")
	return d.lines, d.problems
}
