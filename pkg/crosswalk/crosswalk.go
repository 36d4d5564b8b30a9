// Package crosswalk maps Epic's general-ledger keys to Fusion chart-of-
// accounts segments: a versioned, effective-dated table that analysts edit
// as CSV. A batch records the version it was mapped with.
package crosswalk

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Wildcard in fin_class or payor matches any value.
const Wildcard = "*"

// Rule maps one Epic key, from a date (inclusive) to a date (exclusive;
// zero = open), to Fusion segments.
type Rule struct {
	ServiceArea, CostCenter, GLAccount string
	FinClass, Payor                    string // Wildcard or a value
	From, To                           time.Time
	Segments                           []string
	Line                               int // CSV line, for reports
}

// Table is a loaded crosswalk.
type Table struct {
	Version string
	// SegmentNames are the CSV's segment column headers, in COA order.
	SegmentNames []string
	rules        map[string][]*Rule // service_area|cost_center|gl_account
}

// ErrUnmapped is returned by Lookup when no rule matches.
var ErrUnmapped = errors.New("crosswalk: no mapping")

// keyColumns are the CSV columns before the segments.
var keyColumns = []string{"service_area", "cost_center", "gl_account", "fin_class", "payor", "effective_from", "effective_to"}

// Parse reads the analysts' CSV: a header naming keyColumns then one or
// more segment columns (segment1, segment2, ...), then rules. The version
// is the first 12 hex digits of the file's SHA-256 unless given.
func Parse(r io.Reader, version string) (*Table, error) {
	cr, version, err := csvReader(r, version)
	if err != nil {
		return nil, err
	}
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("crosswalk: header: %w", err)
	}
	if len(header) <= len(keyColumns) {
		return nil, fmt.Errorf("crosswalk: header has %d columns; want %s and at least one segment", len(header), strings.Join(keyColumns, ","))
	}
	for i, c := range keyColumns {
		if !strings.EqualFold(strings.TrimSpace(header[i]), c) {
			return nil, fmt.Errorf("crosswalk: header column %d is %q, want %q", i+1, header[i], c)
		}
	}
	t := &Table{Version: version, SegmentNames: header[len(keyColumns):], rules: map[string][]*Rule{}}
	var problems []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("crosswalk: %w", err) // a *csv.ParseError names the line
		}
		line, _ := cr.FieldPos(0)
		rule, perr := parseRule(rec, len(t.SegmentNames), line)
		if perr != nil {
			problems = append(problems, perr.Error())
			continue
		}
		k := key(rule.ServiceArea, rule.CostCenter, rule.GLAccount)
		for _, o := range t.rules[k] {
			if o.FinClass == rule.FinClass && o.Payor == rule.Payor && overlaps(o, rule) {
				problems = append(problems, fmt.Sprintf("line %d: overlaps line %d for the same key and dates", line, o.Line))
			}
		}
		t.rules[k] = append(t.rules[k], rule)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("crosswalk: %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return t, nil
}

func parseRule(rec []string, nseg, line int) (*Rule, error) {
	if len(rec) != len(keyColumns)+nseg {
		return nil, fmt.Errorf("line %d: %d columns, want %d", line, len(rec), len(keyColumns)+nseg)
	}
	r := &Rule{ServiceArea: rec[0], CostCenter: rec[1], GLAccount: rec[2], FinClass: rec[3], Payor: rec[4], Line: line}
	for i, v := range []string{r.ServiceArea, r.CostCenter, r.GLAccount} {
		if v == "" || v == Wildcard {
			return nil, fmt.Errorf("line %d: %s must be a value", line, keyColumns[i])
		}
	}
	if r.FinClass == "" {
		r.FinClass = Wildcard
	}
	if r.Payor == "" {
		r.Payor = Wildcard
	}
	var err error
	if rec[5] != "" {
		if r.From, err = time.Parse("2006-01-02", rec[5]); err != nil {
			return nil, fmt.Errorf("line %d: effective_from %q is not YYYY-MM-DD", line, rec[5])
		}
	}
	if rec[6] != "" {
		if r.To, err = time.Parse("2006-01-02", rec[6]); err != nil {
			return nil, fmt.Errorf("line %d: effective_to %q is not YYYY-MM-DD", line, rec[6])
		}
		if !r.To.After(r.From) {
			return nil, fmt.Errorf("line %d: effective_to is not after effective_from", line)
		}
	}
	r.Segments = rec[len(keyColumns):]
	for i, s := range r.Segments {
		if s == "" {
			return nil, fmt.Errorf("line %d: segment %d is empty", line, i+1)
		}
	}
	return r, nil
}

func overlaps(a, b *Rule) bool {
	aTo, bTo := a.To, b.To
	if aTo.IsZero() {
		aTo = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if bTo.IsZero() {
		bTo = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return a.From.Before(bTo) && b.From.Before(aTo)
}

func key(sa, cc, acct string) string { return sa + "|" + cc + "|" + acct }

// Key is what Lookup is asked about.
type Key struct {
	ServiceArea, CostCenter, GLAccount, FinClass, Payor []byte
	Date                                                time.Time
}

// Lookup returns the segments for k: among the rules in force on k.Date,
// an exact fin_class and payor beat a wildcard. The returned slice is the
// table's: do not modify it. buf is scratch space for the map key.
func (t *Table) Lookup(k Key, buf []byte) ([]string, *Rule, error) {
	buf = append(buf[:0], k.ServiceArea...)
	buf = append(buf, '|')
	buf = append(buf, k.CostCenter...)
	buf = append(buf, '|')
	buf = append(buf, k.GLAccount...)
	var best *Rule
	bestScore := -1
	for _, r := range t.rules[string(buf)] {
		if k.Date.Before(r.From) || (!r.To.IsZero() && !k.Date.Before(r.To)) {
			continue
		}
		score := 0
		if r.FinClass != Wildcard {
			if r.FinClass != string(k.FinClass) {
				continue
			}
			score += 2
		}
		if r.Payor != Wildcard {
			if r.Payor != string(k.Payor) {
				continue
			}
			score++
		}
		if score > bestScore {
			best, bestScore = r, score
		}
	}
	if best == nil {
		return nil, nil, ErrUnmapped
	}
	return best.Segments, best, nil
}

// Rules returns every rule, ordered by CSV line.
func (t *Table) Rules() []*Rule {
	var out []*Rule
	for _, rs := range t.rules {
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// csvReader reads an analysts' CSV whole, names its version (the first 12
// hex digits of its SHA-256 unless given) and returns a reader of its
// records: '#' comments, leading blanks trimmed.
func csvReader(r io.Reader, version string) (*csv.Reader, string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, "", fmt.Errorf("crosswalk: %w", err)
	}
	if version == "" {
		sum := sha256.Sum256(data)
		version = hex.EncodeToString(sum[:6])
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	return cr, version, nil
}
