package recon_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/sinewhq/sinew/pkg/recon"
)

// TestSyntheticFile is TestCorpusFile on the in-repo synthetic sample
// (pkg/fbdi's testdata, one copy for both packages): read back, then
// reconciled against Fusion's documented outcome for its invalid account:
// the EF04 line holds its whole group.
func TestSyntheticFile(t *testing.T) {
	b, err := os.ReadFile("../fbdi/testdata/synthetic/GlInterface.csv")
	if err != nil {
		t.Fatal(err)
	}
	var src []recon.SourceLine
	if err := recon.ReadGlInterface(bytes.NewReader(b), int64(len(b)), func(l *recon.SourceLine) error {
		src = append(src, *l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(src) != 4 || src[0].Account != "201-1100-11010-000-0000-000" || src[0].DR != 842_17 || src[0].GroupID != 700042 ||
		src[3].CR != 10_00 || src[2].Reference21 != "SYN:HB:20260212:0002:1" {
		t.Fatalf("read %+v", src)
	}
	in := &recon.Input{Batch: src[0].Batch, RejectedGroups: []int64{700042},
		Rejected: []recon.RejectedLine{{GroupID: 700042, Reference21: "SYN:HB:20260212:0002:1", Code: "EF04", Text: "FLEX-VALUE DOES NOT EXIST"}}}
	s := recon.Reconcile(in, src).Summary
	if s.Verdict != recon.VerdictRejected || s.Rejected != 1 || s.Held != 3 {
		t.Errorf("summary %+v", s)
	}
}
