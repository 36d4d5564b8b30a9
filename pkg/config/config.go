// Package config loads a service's configuration into one explicit struct.
//
// Every Sinew service declares a single struct holding its settings, with
// defaults already filled in by the caller. Values are then layered on top:
//
//  1. the defaults already in the struct,
//  2. a YAML file (or one top-level section of a shared file, which is how
//     `sinew up` configures every service from one file),
//  3. environment variables.
//
// YAML keys come from the `yaml` struct tags. Unknown keys are an error, so a
// misspelt setting fails at start-up instead of being silently ignored.
//
// Environment variables are named after the YAML key path: prefix, then each
// key upper-cased, joined by "_". With prefix "SINEW_INGEST", the field
// tagged `yaml:"url"` inside the field tagged `yaml:"nats"` is read from
// SINEW_INGEST_NATS_URL. The prefix is upper-cased too, and characters that
// cannot appear in a portable variable name (anything but letters, digits
// and "_") become "_".
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load fills dst, a pointer to a struct already holding defaults, from the
// YAML file at path (skipped when path is "") and then from the environment
// variables named after prefix (skipped when prefix is "", so that a field
// called "path" never picks up $PATH). Keys in the file that match no
// field are an error.
func Load(path, prefix string, dst any) error {
	if err := checkDst(dst); err != nil {
		return err
	}
	if path != "" {
		if err := decodeFile(path, dst); err != nil {
			return err
		}
	}
	return loadEnv(prefix, dst, os.LookupEnv)
}

// LoadSection is Load for one top-level section of a larger YAML file: the
// file holds one key per service (ingest:, transform:, ...) and only the
// value under section is decoded into dst. A missing or empty section keeps
// the defaults. Unknown keys inside the section are an error; other
// top-level keys are ignored because they belong to other services.
func LoadSection(path, section, prefix string, dst any) error {
	if err := checkDst(dst); err != nil {
		return err
	}
	if section == "" || strings.ContainsAny(section, ",\"`\\") {
		return fmt.Errorf("config: invalid section name %q", section)
	}
	if path != "" {
		// Decode into a struct made on the fly with one field for the
		// section and an inline map that absorbs the other services'
		// sections. That keeps yaml.v3's strict field checking and its line
		// numbers for the section, which re-encoding the sub-tree would lose.
		wrapper := reflect.StructOf([]reflect.StructField{
			{
				Name: "Section",
				Type: reflect.TypeOf(dst),
				Tag:  reflect.StructTag(`yaml:"` + section + `"`),
			},
			{
				Name: "Others",
				Type: reflect.TypeFor[map[string]yaml.Node](),
				Tag:  `yaml:",inline"`,
			},
		})
		w := reflect.New(wrapper)
		w.Elem().Field(0).Set(reflect.ValueOf(dst))
		if err := decodeFile(path, w.Interface()); err != nil {
			return err
		}
	}
	return loadEnv(prefix, dst, os.LookupEnv)
}

// decodeFile decodes the single YAML document in the file at path into dst,
// rejecting unknown keys. An empty file leaves dst untouched.
func decodeFile(path string, dst any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()

	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("config: %s: %w", path, err)
	}
	// A second document would otherwise be ignored without a word.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("config: %s: %w", path, err)
		}
		return fmt.Errorf("config: %s: more than one YAML document", path)
	}
	return nil
}

func checkDst(dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: destination must be a non-nil pointer to a struct, got %T", dst)
	}
	return nil
}
