package clarity_test

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/resolute/clarity"
)

// FuzzParquet feeds Clarity Parquet extracts (outside bytes from Epic's
// share) to the converter: a broken or hostile file is an error, never a
// panic. Seeds: real extracts written by parquet-go, then the fuzzer's
// mutations of them.
func FuzzParquet(f *testing.F) {
	dr, cr := 12.34, int64(1000)
	for _, n := range []int{1, 3} {
		f.Add(parquetBytes(f, rows(n, func(i int) (*float64, *int64) {
			if i%2 == 0 {
				return &dr, nil
			}
			return nil, &cr
		})))
	}
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := clarity.ReadParquet(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		var pipe bytes.Buffer
		_, _ = resolute.ConvertClarity(&pipe, rows, resolute.Clarity{}, resolute.DefaultLayout())
	})
}

func parquetBytes(tb testing.TB, r []extractRow) []byte {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[extractRow](&buf)
	if _, err := w.Write(r); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
