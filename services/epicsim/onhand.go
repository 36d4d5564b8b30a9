package epicsim

import (
	"bytes"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sinewhq/sinew/pkg/recon"
)

// OnhandConfig shapes Beaker's nightly instrument / lab stock counts: CSV
// files (recon.OnhandCountHeader) of what Beaker believes is on the
// shelf, written while traffic runs.
type OnhandConfig struct {
	// Drop is the folder count files are written to; empty: the
	// beaker-onhand folder next to ResoluteDrop (<data-dir>/drop/beaker-onhand
	// under sinew up).
	Drop string `yaml:"drop"`
	// Interval between counts (nightly: 24 h); 0 turns counts off.
	Interval time.Duration `yaml:"interval"`
	// First is when the first count is taken after traffic starts, so a
	// fresh `make run` shows one within minutes.
	First time.Duration `yaml:"first"`
	// Starting is the quantity of every reagent item on the shelf when
	// traffic starts, in Fusion's UOM: fusionsim's starting_onhand.
	Starting string `yaml:"starting"`
}

// Reagent is a reagent one Beaker message consumed, as Beaker records it.
type Reagent struct {
	Department, Code, Unit string
	Quantity               recon.Qty
}

// reagents are the reagents the generator sends, with the factor the demo
// item crosswalk (deploy/demo/items.csv) converts their Epic unit with.
var reagents = []struct{ code, unit, factor string }{
	{"CBC-PK", "PK", "1"},
	{"GLU-R1", "L", "1000"},
}

// labDepartment is the lab section of every reagent the generator sends.
const labDepartment = "CORELAB"

// StockBook is Beaker's belief about its shelves: the starting quantity
// minus every reagent consumed in a message Sinew acknowledged.
type StockBook struct {
	mu       sync.Mutex
	starting recon.Qty // in Fusion's UOM
	used     map[[2]string]recon.Qty
}

// NewStockBook starts a book with starting (Fusion's UOM) of every reagent.
func NewStockBook(starting string) (*StockBook, error) {
	q, err := recon.ParseQty(starting)
	if err != nil {
		return nil, fmt.Errorf("epicsim: onhand.starting: %w", err)
	}
	return &StockBook{starting: q, used: map[[2]string]recon.Qty{}}, nil
}

// Consume records what an acknowledged message consumed.
func (b *StockBook) Consume(rs []Reagent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range rs {
		b.used[[2]string{r.Department, r.Code}] += r.Quantity
	}
}

// Count renders the book as a count file standing at moment at: one row
// per reagent, in Epic's unit.
func (b *StockBook) Count(at time.Time) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var buf bytes.Buffer
	buf.WriteString(recon.OnhandCountHeader + "\n")
	for _, r := range reagents {
		start, err := epicUnits(b.starting, r.factor)
		if err != nil {
			return nil, fmt.Errorf("epicsim: starting on-hand of %s: %w", r.code, err)
		}
		fmt.Fprintf(&buf, "%s,%s,%s,%s,%s\n", at.UTC().Format(time.RFC3339), labDepartment, r.code,
			start-b.used[[2]string{labDepartment, r.code}], r.unit)
	}
	return buf.Bytes(), nil
}

// epicUnits converts a quantity in Fusion's UOM back to Epic's unit
// (÷ the crosswalk factor), exactly.
func epicUnits(q recon.Qty, factor string) (recon.Qty, error) {
	f, ok := new(big.Rat).SetString(factor)
	if !ok || f.Sign() <= 0 {
		return 0, fmt.Errorf("factor %q is not a positive decimal", factor)
	}
	r := new(big.Rat).Quo(new(big.Rat).SetInt64(int64(q)), f)
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("%s ÷ %s needs more than four decimals", q, factor)
	}
	return recon.Qty(r.Num().Int64()), nil
}

// WriteOnhandCount writes a count file standing at moment at into dir,
// under a .part name renamed into place, and returns its name.
func WriteOnhandCount(dir string, at time.Time, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	name := "beaker-onhand-" + at.UTC().Format("20060102-150405") + ".csv"
	part := filepath.Join(dir, name+".part")
	if err := os.WriteFile(part, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Rename(part, filepath.Join(dir, name))
}

// onhandDrop is the folder count files go to, "" when none.
func (c Config) onhandDrop() string {
	switch {
	case c.Onhand.Drop != "":
		return c.Onhand.Drop
	case c.ResoluteDrop != "":
		return filepath.Join(filepath.Dir(c.ResoluteDrop), "beaker-onhand")
	}
	return ""
}
