package crosswalk

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// chartKey holds the valid combinations last pulled from Fusion, as CSV.
const chartKey = "chart.current"

// ChartCSV writes combinations as a chart CSV (ParseChart reads it back).
func ChartCSV(combos [][]string) ([]byte, error) {
	n := 0
	for _, c := range combos {
		n = max(n, len(c))
	}
	if n == 0 {
		return nil, errors.New("crosswalk: chart: no combinations")
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	header := make([]string, n)
	for i := range header {
		header[i] = "segment" + strconv.Itoa(i+1)
	}
	_ = w.Write(header)
	for _, c := range combos {
		if len(c) != n {
			return nil, fmt.Errorf("crosswalk: chart: combination %v has %d segments, want %d", c, len(c), n)
		}
		_ = w.Write(c)
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// SaveChart stores a chart CSV as the current valid combinations (the
// bucket keeps earlier ones as history). It is checked first. From then
// on it is the chart mapped lines are checked against, in place of the
// configured file.
func (s *Store) SaveChart(ctx context.Context, data []byte) (*Chart, error) {
	c, err := ParseChart(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if c.Len() == 0 {
		return nil, errors.New("crosswalk: chart: no combinations")
	}
	if _, err := s.kv.Put(ctx, chartKey, data); err != nil {
		return nil, fmt.Errorf("crosswalk: store chart: %w", err)
	}
	return c, nil
}

// Chart returns the stored chart, or ErrNoVersion when none was saved.
func (s *Store) Chart(ctx context.Context) (*Chart, error) {
	e, err := s.kv.Get(ctx, chartKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoVersion
	} else if err != nil {
		return nil, fmt.Errorf("crosswalk: chart: %w", err)
	}
	return ParseChart(bytes.NewReader(e.Value()))
}
