package crosswalk

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sinewhq/sinew/pkg/decimal"
)

// Code-table kinds, each versioned on its own in the store next to COA.
const (
	// Item maps an Epic code (NDC, charge code, supply id, reagent code) to
	// a Fusion item, its item-master organization and a unit conversion.
	Item = "item"
	// Department maps an Epic department or location to a Fusion inventory
	// organization and subinventory.
	Department = "department"
	// UOM converts Epic units of measure to Fusion UOM codes when the item
	// row names no conversion of its own.
	UOM = "uom"
)

// Schema is the fixed CSV layout of a code-table kind: the header must name
// Columns in this order; the first Key columns form the lookup key and the
// Required ones must be non-empty.
type Schema struct {
	Kind     string
	Columns  []string
	Key      int
	Required []string
}

// Column indexes of the item kind.
const (
	ItemSource = iota // ndc | charge | supply | reagent
	ItemCode
	ItemFusionItem
	ItemOrganization
	ItemEpicUOM   // optional: the unit Epic counts in
	ItemFusionUOM // the Fusion UOM code of the item
	ItemFactor    // optional: Fusion units per Epic unit (exact decimal; 1 when empty)
)

// Column indexes of the department kind.
const (
	DeptCode = iota
	DeptOrganization
	DeptSubinventory
)

// Column indexes of the uom kind.
const (
	UOMEpic = iota
	UOMFusion
	UOMFactor
)

var schemas = map[string]Schema{
	Item: {Kind: Item, Key: 2,
		Columns:  []string{"source", "code", "fusion_item", "organization", "epic_uom", "fusion_uom", "factor"},
		Required: []string{"source", "code", "fusion_item", "organization", "fusion_uom"}},
	Department: {Kind: Department, Key: 1,
		Columns:  []string{"department", "organization", "subinventory"},
		Required: []string{"department", "organization", "subinventory"}},
	UOM: {Kind: UOM, Key: 2,
		Columns:  []string{"epic_uom", "fusion_uom", "factor"},
		Required: []string{"epic_uom", "fusion_uom", "factor"}},
}

// ItemSources are the values the item kind's source column may take.
var ItemSources = []string{"ndc", "charge", "supply", "reagent"}

// SchemaOf returns the layout of a code-table kind.
func SchemaOf(kind string) (Schema, bool) {
	s, ok := schemas[kind]
	return s, ok
}

// Kinds lists every crosswalk kind the store knows, COA first.
func Kinds() []string { return []string{COA, Item, Department, UOM} }

// IsCodes reports whether kind is a code table (not the COA crosswalk).
func IsCodes(kind string) bool { _, ok := schemas[kind]; return ok }

// Row is one line of a code table.
type Row struct {
	Values []string // in Schema.Columns order
	Line   int      // CSV line
}

// Codes is a loaded code table of one kind.
type Codes struct {
	Kind    string
	Version string
	Schema  Schema
	rows    map[string]*Row
}

// ParseCodes reads a code table of kind from CSV ('#' comments, header
// row). The version is the first 12 hex digits of the file's SHA-256
// unless given. Codes are matched case-sensitively except the item
// source, which is lower-cased.
func ParseCodes(kind string, r io.Reader, version string) (*Codes, error) {
	sc, ok := schemas[kind]
	if !ok {
		return nil, fmt.Errorf("crosswalk: unknown kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
	}
	cr, version, err := csvReader(r, version)
	if err != nil {
		return nil, err
	}
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("crosswalk: %s header: %w", kind, err)
	}
	if len(header) != len(sc.Columns) {
		return nil, fmt.Errorf("crosswalk: %s header has %d columns; want %s", kind, len(header), strings.Join(sc.Columns, ","))
	}
	for i, c := range sc.Columns {
		if !strings.EqualFold(strings.TrimSpace(header[i]), c) {
			return nil, fmt.Errorf("crosswalk: %s header column %d is %q, want %q", kind, i+1, header[i], c)
		}
	}
	required := map[int]bool{}
	for i, c := range sc.Columns {
		for _, r := range sc.Required {
			if r == c {
				required[i] = true
			}
		}
	}
	c := &Codes{Kind: kind, Version: version, Schema: sc, rows: map[string]*Row{}}
	var problems []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("crosswalk: %s: %w", kind, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(sc.Columns) {
			problems = append(problems, fmt.Sprintf("line %d: %d columns, want %d", line, len(rec), len(sc.Columns)))
			continue
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		bad := false
		for i := range rec {
			if required[i] && rec[i] == "" {
				problems = append(problems, fmt.Sprintf("line %d: %s is empty", line, sc.Columns[i]))
				bad = true
			}
		}
		if bad {
			continue
		}
		if perr := checkRow(kind, rec); perr != "" {
			problems = append(problems, fmt.Sprintf("line %d: %s", line, perr))
			continue
		}
		k := joinKey(rec[:sc.Key])
		if o, dup := c.rows[k]; dup {
			problems = append(problems, fmt.Sprintf("line %d: duplicates line %d (%s)", line, o.Line, strings.Join(rec[:sc.Key], "/")))
			continue
		}
		c.rows[k] = &Row{Values: rec, Line: line}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("crosswalk: %s: %d problems:\n%s", kind, len(problems), strings.Join(problems, "\n"))
	}
	return c, nil
}

func checkRow(kind string, rec []string) string {
	switch kind {
	case Item:
		rec[ItemSource] = strings.ToLower(rec[ItemSource])
		known := false
		for _, s := range ItemSources {
			known = known || s == rec[ItemSource]
		}
		if !known {
			return fmt.Sprintf("source %q is not one of %s", rec[ItemSource], strings.Join(ItemSources, "|"))
		}
		if rec[ItemFactor] != "" && !positiveDecimal(rec[ItemFactor]) {
			return fmt.Sprintf("factor %q is not a positive decimal", rec[ItemFactor])
		}
		if rec[ItemFactor] != "" && rec[ItemEpicUOM] == "" {
			return "factor without epic_uom"
		}
	case UOM:
		if !positiveDecimal(rec[UOMFactor]) {
			return fmt.Sprintf("factor %q is not a positive decimal", rec[UOMFactor])
		}
	}
	return ""
}

// positiveDecimal reports whether s is digits with at most one '.', not
// zero, and no sign.
func positiveDecimal(s string) bool {
	d, err := decimal.ParsePlain(s)
	return err == nil && s[0] != '+' && d.Sign() > 0
}

func joinKey(parts []string) string { return strings.Join(parts, "\x00") }

// ErrUnknownKind is returned for a kind the store does not know.
var ErrUnknownKind = errors.New("crosswalk: unknown kind")

// Lookup returns the row for key parts (as many as Schema.Key), or nil.
// buf is scratch space: with it a lookup allocates nothing.
func (c *Codes) Lookup(buf []byte, parts ...[]byte) *Row {
	buf = buf[:0]
	for i, p := range parts {
		if i > 0 {
			buf = append(buf, 0)
		}
		buf = append(buf, p...)
	}
	return c.rows[string(buf)]
}

// LookupString is Lookup with string parts.
func (c *Codes) LookupString(parts ...string) *Row { return c.rows[joinKey(parts)] }

// Len is the number of rows.
func (c *Codes) Len() int { return len(c.rows) }

// Rows returns every row, ordered by CSV line.
func (c *Codes) Rows() []*Row {
	out := make([]*Row, 0, len(c.rows))
	for _, r := range c.rows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// DiffCodes lists what changes from a to b, by key.
func DiffCodes(a, b *Codes) []Change {
	index := func(c *Codes) map[string]string {
		m := map[string]string{}
		for _, r := range c.rows {
			m[strings.Join(r.Values[:c.Schema.Key], "/")] = strings.Join(r.Values[c.Schema.Key:], ",")
		}
		return m
	}
	return diffIndex(index(a), index(b))
}
