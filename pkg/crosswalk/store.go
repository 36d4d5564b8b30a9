package crosswalk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// COA is the name of the chart-of-accounts crosswalk in the store.
const COA = "coa"

// Store keeps crosswalk versions in a JetStream KV bucket: the analysts'
// CSV under <name>.v.<version>, and <name>.current pointing at the version
// in force. Old versions stay, so a batch mapped last month can be
// explained with the table it used.
type Store struct{ kv jetstream.KeyValue }

// NewStore uses bucket kv (streams.KVCrosswalk).
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// ErrNoVersion is returned when a crosswalk or version is not in the store.
var ErrNoVersion = errors.New("crosswalk: no such version")

// Load checks csv, stores it as a new version (its content hash unless
// version is given) and makes it current. Loading the same bytes again is
// a no-op that returns the same version.
func (s *Store) Load(ctx context.Context, name string, csv []byte, version string) (*Table, error) {
	t, err := Parse(bytes.NewReader(csv), version)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(t.Version, ". *>") {
		return nil, fmt.Errorf("crosswalk: version %q may not contain dots, spaces or wildcards", t.Version)
	}
	if _, err := s.kv.Put(ctx, name+".v."+t.Version, csv); err != nil {
		return nil, fmt.Errorf("crosswalk: store %s: %w", t.Version, err)
	}
	if _, err := s.kv.PutString(ctx, name+".current", t.Version); err != nil {
		return nil, fmt.Errorf("crosswalk: make %s current: %w", t.Version, err)
	}
	return t, nil
}

// Current returns the version in force.
func (s *Store) Current(ctx context.Context, name string) (*Table, error) {
	e, err := s.kv.Get(ctx, name+".current")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("crosswalk: %s: %w (load one with sinew crosswalk load)", name, ErrNoVersion)
	} else if err != nil {
		return nil, fmt.Errorf("crosswalk: %w", err)
	}
	return s.Version(ctx, name, string(e.Value()))
}

// Version returns one stored version.
func (s *Store) Version(ctx context.Context, name, version string) (*Table, error) {
	e, err := s.kv.Get(ctx, name+".v."+version)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("crosswalk: %s version %s: %w", name, version, ErrNoVersion)
	} else if err != nil {
		return nil, fmt.Errorf("crosswalk: %w", err)
	}
	return Parse(bytes.NewReader(e.Value()), version)
}

// Versions lists the stored versions of name.
func (s *Store) Versions(ctx context.Context, name string) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, name+".v.*")
	if err != nil {
		return nil, fmt.Errorf("crosswalk: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, strings.TrimPrefix(k, name+".v."))
	}
	sort.Strings(out)
	return out, nil
}

// Change is one difference between two versions.
type Change struct {
	Op   string // "added", "removed", "changed"
	Key  string // service_area/cost_center/gl_account fin_class payor from
	From string // segments before ("" when added)
	To   string // segments after ("" when removed)
}

// Diff lists what changes from a to b, by rule key.
func Diff(a, b *Table) []Change {
	index := func(t *Table) map[string]string {
		m := map[string]string{}
		for _, r := range t.Rules() {
			k := fmt.Sprintf("%s/%s/%s fin_class=%s payor=%s from=%s", r.ServiceArea, r.CostCenter, r.GLAccount,
				r.FinClass, r.Payor, r.From.Format("2006-01-02"))
			to := ""
			if !r.To.IsZero() {
				to = " until " + r.To.Format("2006-01-02")
			}
			m[k] = strings.Join(r.Segments, ".") + to
		}
		return m
	}
	return diffIndex(index(a), index(b))
}

// diffIndex lists the changes between two key → value indexes, by key.
func diffIndex(ia, ib map[string]string) []Change {
	var out []Change
	for k, v := range ia {
		if w, ok := ib[k]; !ok {
			out = append(out, Change{Op: "removed", Key: k, From: v})
		} else if w != v {
			out = append(out, Change{Op: "changed", Key: k, From: v, To: w})
		}
	}
	for k, w := range ib {
		if _, ok := ia[k]; !ok {
			out = append(out, Change{Op: "added", Key: k, To: w})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// LoadCodes checks csv as a code table of kind, stores it as a new version
// (its content hash unless version is given) and makes it current.
func (s *Store) LoadCodes(ctx context.Context, kind string, csv []byte, version string) (*Codes, error) {
	c, err := ParseCodes(kind, bytes.NewReader(csv), version)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(c.Version, ". *>") {
		return nil, fmt.Errorf("crosswalk: version %q may not contain dots, spaces or wildcards", c.Version)
	}
	if _, err := s.kv.Put(ctx, kind+".v."+c.Version, csv); err != nil {
		return nil, fmt.Errorf("crosswalk: store %s %s: %w", kind, c.Version, err)
	}
	if _, err := s.kv.PutString(ctx, kind+".current", c.Version); err != nil {
		return nil, fmt.Errorf("crosswalk: make %s %s current: %w", kind, c.Version, err)
	}
	return c, nil
}

// CurrentVersion returns the name of the version of kind in force.
func (s *Store) CurrentVersion(ctx context.Context, kind string) (string, error) {
	e, err := s.kv.Get(ctx, kind+".current")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("crosswalk: %s: %w (load one with sinew crosswalk load --kind %s)", kind, ErrNoVersion, kind)
	} else if err != nil {
		return "", fmt.Errorf("crosswalk: %w", err)
	}
	return string(e.Value()), nil
}

// CurrentCodes returns the code table of kind in force.
func (s *Store) CurrentCodes(ctx context.Context, kind string) (*Codes, error) {
	v, err := s.CurrentVersion(ctx, kind)
	if err != nil {
		return nil, err
	}
	return s.VersionCodes(ctx, kind, v)
}

// VersionCodes returns one stored version of a code table.
func (s *Store) VersionCodes(ctx context.Context, kind, version string) (*Codes, error) {
	e, err := s.kv.Get(ctx, kind+".v."+version)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("crosswalk: %s version %s: %w", kind, version, ErrNoVersion)
	} else if err != nil {
		return nil, fmt.Errorf("crosswalk: %w", err)
	}
	return ParseCodes(kind, bytes.NewReader(e.Value()), version)
}
