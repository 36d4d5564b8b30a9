package recon_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/recon"
)

// Fuzz targets for the outside bytes the reconciler reads: GL_INTERFACE
// files (CSV, or the FBDI zip transform built and Fusion keeps), Beaker's
// stock count files and quantities. None may panic.

func glSeeds(f *testing.F) [][]byte {
	out := [][]byte{[]byte("GROUP_ID,ENTERED_DR\n1,1.00\n"), []byte("PK\x03\x04")}
	for _, p := range corpus.Seeds(f, "fusion", "GlInterface*.csv") {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzReadGlInterfaceCSV(f *testing.F) {
	for _, s := range glSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = recon.ReadGlInterfaceCSV(bytes.NewReader(b), func(*recon.SourceLine) error { return nil })
	})
}

func FuzzReadGlInterface(f *testing.F) {
	for _, s := range glSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = recon.ReadGlInterface(bytes.NewReader(b), int64(len(b)), func(*recon.SourceLine) error { return nil })
	})
}

func FuzzParseOnhandCount(f *testing.F) {
	f.Add([]byte("# Beaker count\ncount_date,department,reagent_code,quantity,unit\n2026-11-26,CORELAB,CBC-PK,987,PK\n2026-11-26, CORELAB ,GLU-R1,0.75,L\n"))
	f.Add([]byte("count_date,department,reagent_code,quantity,unit\n2026-11-26,CORELAB,CBC-PK,1e99999,PK\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = recon.ParseOnhandCount(bytes.NewReader(b))
	})
}

func FuzzParseQty(f *testing.F) {
	for _, s := range []string{"0", "0.75", "-3", "1e5", "99999999999999999999.999999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = recon.ParseQty(s)
	})
}
