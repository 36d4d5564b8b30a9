package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// LoadEnv is Load's environment step alone, reading variables through
// lookup (os.LookupEnv in Load) so tests and `sinew up` can supply their
// own; a nil lookup means os.LookupEnv. A prefix of "" skips the step.
//
// Supported field types: string, bool, every int and uint kind, float32 and
// float64, time.Duration, []string (comma-separated, each item trimmed,
// empty items dropped), types implementing encoding.TextUnmarshaler, nested
// structs, and pointers to any of these (allocated only when a variable for
// them is set). Fields tagged `yaml:"-"` and unexported fields are skipped;
// `yaml:",inline"` fields share their parent's prefix. A variable set for a
// field of any other type is an error.
func LoadEnv(prefix string, dst any, lookup func(string) (string, bool)) error {
	if err := checkDst(dst); err != nil {
		return err
	}
	return loadEnv(prefix, dst, lookup)
}

func loadEnv(prefix string, dst any, lookup func(string) (string, bool)) error {
	if prefix == "" {
		return nil
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	l := envLoader{lookup: lookup}
	_, err := l.load(reflect.ValueOf(dst).Elem(), envName(prefix))
	return err
}

type envLoader struct {
	lookup func(string) (string, bool)
}

// load sets v from the variable called name, or, for structs, from the
// variables under name. It reports whether any variable was found.
func (l envLoader) load(v reflect.Value, name string) (bool, error) {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		return l.loadPointer(v, name)
	case reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()):
		raw, ok := l.lookup(name)
		if !ok {
			return false, nil
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(raw)); err != nil {
			return true, fmt.Errorf("config: %s: invalid value %q: %w", name, raw, err)
		}
		return true, nil
	case t.Kind() == reflect.Struct:
		return l.loadStruct(v, name)
	}

	raw, ok := l.lookup(name)
	if !ok {
		return false, nil
	}
	return true, setScalar(v, name, raw)
}

// loadPointer allocates the pointed-to value only when a variable for it is
// set, so an optional section stays nil unless it is configured.
func (l envLoader) loadPointer(v reflect.Value, name string) (bool, error) {
	if !v.IsNil() {
		return l.load(v.Elem(), name)
	}
	fresh := reflect.New(v.Type().Elem())
	found, err := l.load(fresh.Elem(), name)
	if err != nil {
		return found, err
	}
	if found {
		v.Set(fresh)
	}
	return found, nil
}

func (l envLoader) loadStruct(v reflect.Value, name string) (bool, error) {
	t := v.Type()
	set := false
	for i := range t.NumField() {
		f := t.Field(i)
		// yaml.v3 also fills embedded structs of unexported types, so
		// their exported fields are reachable here too.
		if !f.IsExported() && !(f.Anonymous && f.Type.Kind() == reflect.Struct) {
			continue
		}
		key, inline, skip := yamlKey(f)
		// An inline map collects unknown YAML keys; it has no variable.
		if skip || inline && f.Type.Kind() == reflect.Map {
			continue
		}
		child := name
		if !inline {
			child = name + "_" + envName(key)
		}
		found, err := l.load(v.Field(i), child)
		if err != nil {
			return found, err
		}
		set = set || found
	}
	return set, nil
}

// yamlKey returns the key yaml.v3 uses for f: the tag's name, or the field
// name lower-cased when the tag has none.
func yamlKey(f reflect.StructField) (key string, inline, skip bool) {
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return "", false, true
	}
	name, flags, _ := strings.Cut(tag, ",")
	for flag := range strings.SplitSeq(flags, ",") {
		if flag == "inline" {
			inline = true
		}
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, inline, false
}

// envName upper-cases s and replaces anything but letters, digits and "_"
// with "_", since shells cannot set variables like SINEW_X_LOG-LEVEL.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, s)
}

func setScalar(v reflect.Value, name, raw string) error {
	t := v.Type()
	if t == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("config: %s: invalid duration %q", name, raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("config: %s: invalid bool %q", name, raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 0, t.Bits())
		if err != nil {
			return numError(name, "integer", raw, t, err)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(strings.TrimSpace(raw), 0, t.Bits())
		if err != nil {
			return numError(name, "unsigned integer", raw, t, err)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), t.Bits())
		if err != nil {
			return numError(name, "number", raw, t, err)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if t.Elem().Kind() != reflect.String {
			return fmt.Errorf("config: %s: unsupported type %s", name, t)
		}
		items := reflect.MakeSlice(t, 0, strings.Count(raw, ",")+1)
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = reflect.Append(items, reflect.ValueOf(item).Convert(t.Elem()))
			}
		}
		v.Set(items)
	default:
		return fmt.Errorf("config: %s: unsupported type %s", name, t)
	}
	return nil
}

func numError(name, kind, raw string, t reflect.Type, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("config: %s: %q out of range for %s", name, raw, t)
	}
	return fmt.Errorf("config: %s: invalid %s %q", name, kind, raw)
}
