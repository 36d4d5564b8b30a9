package resolute

import (
	"path/filepath"
	"strings"
)

// Batch file formats of the resolute-gl flow.
const (
	FormatResolute       = "resolute"        // the pipe-delimited journal file
	FormatClarityCSV     = "clarity-csv"     // a Clarity extract, CSV with a header row
	FormatClarityParquet = "clarity-parquet" // a Clarity extract, Parquet
)

// FormatOf tells a batch file's format by its name: .csv is a Clarity CSV
// extract, .parquet a Clarity Parquet extract, anything else a Resolute
// journal file.
func FormatOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatClarityCSV
	case ".parquet":
		return FormatClarityParquet
	}
	return FormatResolute
}
