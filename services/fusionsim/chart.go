package fusionsim

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"
)

// demoChart is deploy/demo/chart.csv, the valid combinations `make run`
// maps to; the simulator's default chart of accounts is the same.
const demoChart = `segment1,segment2,segment3,segment4,segment5
101,1000,11010,000,000
101,6010,40100,300,000
101,6010,40200,300,000
101,6010,40210,300,000
101,6020,40100,300,000
101,6020,40200,300,000
102,1000,11010,000,000
102,6010,40100,300,000
102,6010,40200,300,000
102,6020,40100,300,000
102,6020,40200,300,000
102,6021,40100,300,000
`

// demoValueSets name the demo chart's segments
// (company.cost_center.account.product.intercompany).
var demoValueSets = []string{"SINEW_COMPANY", "SINEW_COST_CENTER", "SINEW_ACCOUNT", "SINEW_PRODUCT", "SINEW_INTERCOMPANY"}

// chart is the chart of accounts as Journal Import validates it: one value
// set per segment, derived from the columns of the valid combinations.
type chart struct {
	names  []string // value set name per segment
	values []map[string]bool
	combos [][]string // the valid combinations, in file order (accountCombinationsLOV)
}

func loadChart(cfg SimConfig) (*chart, error) {
	var r io.Reader
	switch {
	case cfg.ChartCSV != "":
		r = strings.NewReader(cfg.ChartCSV)
	case cfg.ChartPath != "":
		f, err := os.Open(cfg.ChartPath)
		if err != nil {
			return nil, fmt.Errorf("fusionsim: chart: %w", err)
		}
		defer f.Close()
		r = f
	default:
		r = strings.NewReader(demoChart)
		if cfg.ValueSetNames == nil {
			cfg.ValueSetNames = demoValueSets
		}
	}
	cr := csv.NewReader(r)
	cr.Comment = '#'
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("fusionsim: chart header: %w", err)
	}
	c := &chart{values: make([]map[string]bool, len(header))}
	for i, h := range header {
		c.values[i] = map[string]bool{}
		name := strings.ToUpper(strings.TrimSpace(h))
		if i < len(cfg.ValueSetNames) && cfg.ValueSetNames[i] != "" {
			name = cfg.ValueSetNames[i]
		}
		c.names = append(c.names, name)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("fusionsim: chart: %w", err)
		}
		combo := make([]string, len(rec))
		for i, v := range rec {
			combo[i] = strings.TrimSpace(v)
			c.values[i][combo[i]] = true
		}
		c.combos = append(c.combos, combo)
	}
	return c, nil
}

// check returns an EF04 description per bad segment value of segs
// (SEGMENT1..SEGMENT30 as loaded).
func (c *chart) check(segs []string) []string {
	var errs []string
	for i, v := range segs {
		if i < len(c.values) {
			if !c.values[i][v] {
				errs = append(errs, fmt.Sprintf("FLEX-VALUE DOES NOT EXIST (SEGMENT=%d) (VALUESET=%s) (VALUE=%s)", i+1, c.names[i], v))
			}
		} else if v != "" {
			errs = append(errs, fmt.Sprintf("FLEX-VALUE DOES NOT EXIST (SEGMENT=%d) (VALUESET=NONE) (VALUE=%s)", i+1, v))
		}
	}
	return errs
}

// account joins the chart's segments of segs with delim.
func (c *chart) account(segs []string, delim string) string {
	n := len(c.values)
	if n > len(segs) {
		n = len(segs)
	}
	return strings.Join(segs[:n], delim)
}
