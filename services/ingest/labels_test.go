package ingest

import "testing"

func TestHL7TypeLabelKeepsOnlyStandardCodes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"RDS": "RDS", "ADT": "ADT", "Z01": "Z01", "": "other", "rds": "other",
		"RDSX": "other", "A B": "other", "ÄDT": "other",
	} {
		if got := hl7TypeLabel(in); got != want {
			t.Errorf("hl7TypeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
