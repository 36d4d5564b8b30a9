package crosswalk

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"
)

// Chart is the set of account combinations Fusion accepts (its chart of
// accounts' valid combinations, as exported): mapped segments are checked
// against it before any file is built, so a bad mapping quarantines the
// batch here instead of failing in Journal Import (EF04).
type Chart struct {
	Segments int
	combos   map[string]struct{}
}

// ParseChart reads a CSV whose header names the segments and whose rows
// are valid combinations ('#' starts a comment).
func ParseChart(r io.Reader) (*Chart, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("crosswalk: chart header: %w", err)
	}
	c := &Chart{Segments: len(header), combos: map[string]struct{}{}}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("crosswalk: chart: %w", err)
		}
		c.combos[strings.Join(rec, ".")] = struct{}{}
	}
	return c, nil
}

// Valid reports whether segs is a valid combination. buf is scratch space.
func (c *Chart) Valid(segs []string, buf []byte) bool {
	if len(segs) != c.Segments {
		return false
	}
	buf = buf[:0]
	for i, s := range segs {
		if i > 0 {
			buf = append(buf, '.')
		}
		buf = append(buf, s...)
	}
	_, ok := c.combos[string(buf)]
	return ok
}

// Len is the number of valid combinations.
func (c *Chart) Len() int { return len(c.combos) }

// ReadChart reads the chart at path (ParseChart of a file).
func ReadChart(path string) (*Chart, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("crosswalk: chart: %w", err)
	}
	defer f.Close()
	return ParseChart(f)
}
