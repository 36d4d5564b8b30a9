package fhir

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// Decode's fast path: a decoding plan per Go type (struct fields by
// their json names, strings, bools, numbers, json.Number, pointers,
// slices), run over the scanner in one pass that validates, fills the
// mapped fields and skips everything else. It gives what encoding/json
// gives for these types (null leaves a value as it is, an element of the
// wrong JSON type is reported by its dotted path after the rest is
// decoded) except that element names match exactly (FHIR's are
// case-sensitive). A type it has no plan for (maps, interfaces, embedded
// structs, ",string" fields, types with their own UnmarshalJSON or
// UnmarshalText such as time.Time) is decoded by encoding/json.

type decodeFn func(d *decoder, v reflect.Value) error

type decoder struct {
	s       scanner
	path    []string // json names from the root to the element at hand
	typeErr string   // the first element of the wrong JSON type
}

func (d *decoder) wrong() error {
	if d.typeErr == "" {
		d.typeErr = strings.Join(d.path, ".")
		if d.typeErr == "" {
			d.typeErr = "."
		}
	}
	return d.s.skip()
}

// plans caches a decodeFn (or nil: no plan) per type.
var plans sync.Map

var numberType = reflect.TypeFor[json.Number]()

func planFor(t reflect.Type) decodeFn {
	if p, ok := plans.Load(t); ok {
		return p.(decodeFn)
	}
	fn := build(t, map[reflect.Type]*decodeFn{})
	plans.Store(t, fn)
	return fn
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func build(t reflect.Type, building map[reflect.Type]*decodeFn) decodeFn {
	if t == numberType {
		return decodeNumber
	}
	// A type that decodes itself (time.Time, ...) is encoding/json's.
	for _, u := range []reflect.Type{jsonUnmarshaler, textUnmarshaler} {
		if t.Implements(u) || reflect.PointerTo(t).Implements(u) {
			return nil
		}
	}
	switch t.Kind() {
	case reflect.String:
		return decodeString
	case reflect.Bool:
		return decodeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return decodeInt
	case reflect.Float32, reflect.Float64:
		return decodeFloat
	case reflect.Pointer:
		elem := build(t.Elem(), building)
		if elem == nil {
			return nil
		}
		et := t.Elem()
		return func(d *decoder, v reflect.Value) error {
			if d.s.null() {
				v.SetZero()
				return nil
			}
			if v.IsNil() {
				v.Set(reflect.New(et))
			}
			return elem(d, v.Elem())
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // base64 []byte
		}
		elem := build(t.Elem(), building)
		if elem == nil {
			return nil
		}
		return func(d *decoder, v reflect.Value) error {
			switch d.s.peek() {
			case 'n':
				if d.s.null() {
					v.SetZero()
					return nil
				}
			case '[':
				v.SetLen(0)
				if v.IsNil() {
					v.Set(reflect.MakeSlice(v.Type(), 0, 2))
				}
				return d.s.array(func(i int) error {
					if i >= v.Cap() {
						v.Grow(1)
					}
					v.SetLen(i + 1)
					e := v.Index(i)
					e.SetZero()
					return elem(d, e)
				})
			}
			return d.wrong()
		}
	case reflect.Struct:
		return buildStruct(t, building)
	}
	return nil
}

func buildStruct(t reflect.Type, building map[reflect.Type]*decodeFn) decodeFn {
	if p, ok := building[t]; ok {
		// A recursive type: the plan is being built; call it once it is.
		return func(d *decoder, v reflect.Value) error { return (*p)(d, v) }
	}
	self := new(decodeFn)
	building[t] = self
	type field struct {
		name  string
		index int
		fn    decodeFn
	}
	fields := map[string]field{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil
		}
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if strings.Contains(opts, "string") {
			return nil
		}
		if name == "" {
			name = sf.Name
		}
		fn := build(sf.Type, building)
		if fn == nil {
			return nil
		}
		fields[name] = field{name, i, fn}
	}
	*self = func(d *decoder, v reflect.Value) error {
		switch d.s.peek() {
		case 'n':
			if d.s.null() {
				return nil
			}
		case '{':
			return d.s.object(func(key []byte) error {
				f, ok := fields[string(key)]
				if !ok {
					return d.s.skip()
				}
				d.path = append(d.path, f.name)
				err := f.fn(d, v.Field(f.index))
				d.path = d.path[:len(d.path)-1]
				return err
			})
		}
		return d.wrong()
	}
	return *self
}

func decodeString(d *decoder, v reflect.Value) error {
	switch d.s.peek() {
	case '"':
		s, err := d.s.stringValue()
		v.SetString(s)
		return err
	case 'n':
		if d.s.null() {
			return nil
		}
	}
	return d.wrong()
}

func decodeBool(d *decoder, v reflect.Value) error {
	switch d.s.peek() {
	case 't':
		v.SetBool(true)
		return d.s.literal("true")
	case 'f':
		v.SetBool(false)
		return d.s.literal("false")
	case 'n':
		if d.s.null() {
			return nil
		}
	}
	return d.wrong()
}

func isNumberStart(c byte) bool { return c == '-' || c >= '0' && c <= '9' }

// decodeNumber keeps a number's text exactly (json.Number); a string
// holding a valid number is taken too, as encoding/json does.
func decodeNumber(d *decoder, v reflect.Value) error {
	switch c := d.s.peek(); {
	case isNumberStart(c):
		n, err := d.s.number()
		v.SetString(string(n))
		return err
	case c == '"':
		s, err := d.s.stringValue()
		if err != nil {
			return err
		}
		sc := scanner{b: []byte(s)}
		if _, err := sc.number(); err != nil || sc.i != len(s) {
			if d.typeErr == "" {
				d.typeErr = strings.Join(d.path, ".")
			}
			return nil
		}
		v.SetString(s)
		return nil
	case c == 'n':
		if d.s.null() {
			return nil
		}
	}
	return d.wrong()
}

func decodeInt(d *decoder, v reflect.Value) error {
	c := d.s.peek()
	if c == 'n' && d.s.null() {
		return nil
	}
	if !isNumberStart(c) {
		return d.wrong()
	}
	n, err := d.s.number()
	if err != nil {
		return err
	}
	i, perr := strconv.ParseInt(string(n), 10, 64)
	if perr != nil || v.OverflowInt(i) {
		if d.typeErr == "" {
			d.typeErr = strings.Join(d.path, ".")
		}
		return nil
	}
	v.SetInt(i)
	return nil
}

func decodeFloat(d *decoder, v reflect.Value) error {
	c := d.s.peek()
	if c == 'n' && d.s.null() {
		return nil
	}
	if !isNumberStart(c) {
		return d.wrong()
	}
	n, err := d.s.number()
	if err != nil {
		return err
	}
	f, perr := strconv.ParseFloat(string(n), v.Type().Bits())
	if perr != nil || v.OverflowFloat(f) {
		if d.typeErr == "" {
			d.typeErr = strings.Join(d.path, ".")
		}
		return nil
	}
	v.SetFloat(f)
	return nil
}
