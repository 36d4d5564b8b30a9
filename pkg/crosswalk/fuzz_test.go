package crosswalk_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sinewhq/sinew/pkg/crosswalk"
)

// Fuzz targets for crosswalk CSV files (loaded by operators with `sinew
// crosswalk load`, so outside bytes): the COA table, every code table kind
// and the chart of accounts. None may panic; a table that parsed answers
// lookups. Seeds: the in-repo demo and test files.

func crosswalkSeeds(f *testing.F) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("../../deploy/demo/*.csv")
	files = append(files, "testdata/coa.csv")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte("\ufeffa,b\r\n\"x\ny\",2\n"), []byte("source,code\n,,,,\n"))
}

func FuzzParse(f *testing.F) {
	for _, s := range crosswalkSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := crosswalk.Parse(bytes.NewReader(b), "v1"); err != nil {
			return
		}
	})
}

func FuzzParseCodes(f *testing.F) {
	for _, s := range crosswalkSeeds(f) {
		for i := range crosswalk.Kinds() {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, b []byte) {
		kinds := crosswalk.Kinds()
		kind := kinds[int(k)%len(kinds)]
		c, err := crosswalk.ParseCodes(kind, bytes.NewReader(b), "v1")
		if err != nil {
			return
		}
		_ = crosswalk.DiffCodes(c, c)
	})
}

func FuzzParseChart(f *testing.F) {
	for _, s := range crosswalkSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = crosswalk.ParseChart(bytes.NewReader(b))
	})
}
