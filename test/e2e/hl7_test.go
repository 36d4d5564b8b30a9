package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
)

// syntheticDir holds pkg/hl7's in-repo messages (synthetic, see its
// SOURCES.md); the conformance corpus (../shared/corpus/hl7v2) is absent
// from a clone, where the tests that read it skip.
const syntheticDir = "../../pkg/hl7/testdata/synthetic"

// TestHL7OverMLLPIsCommittedAndAcknowledged sends in-repo messages with
// `sinew hl7 send` to a running `sinew up` and checks the answers and HL7_IN.
func TestHL7OverMLLPIsCommittedAndAcknowledged(t *testing.T) {
	hl7SendCommitsAndAcknowledges(t, syntheticDir, []string{
		"ADT_A01__synthetic_cr.hl7",
		"RDS_O13__synthetic_rxd_ft1.hl7",
		"DFT_P03__synthetic_ft1.hl7",
		"OMI_O23__synthetic_8859_declared_utf8_bytes.hl7",
		"MFN_M03__synthetic_enhanced_mode.hl7",
	}, []string{"AA SYN-ADT-0001", "AA SYN-RDS-0004", "AA SYN-DFT-0021", "AA SYN-OMI-0008", "CA SYN-MFN-0013"})
}

// TestHL7CorpusOverMLLP is the same with conformance corpus messages.
func TestHL7CorpusOverMLLP(t *testing.T) {
	hl7SendCommitsAndAcknowledges(t, corpus.Dir(t, "hl7v2"), []string{
		"ADT_A01__hapi_cr.hl7",
		"RDS_O13__fhirconv_01_rxd_ft1.hl7",
		"DFT_P03__fhirconv_01.hl7",
		"OMI_O23__dcm4che_msh18_8859_but_utf8_bytes.hl7",
		"MFN_M03__hl7spec_enhanced_mode_AL_AL.hl7",
	}, []string{"AA 22139243", "AA MSG00001", "AA MSG00001", "AA 1001125", "CA MSGID002"})
}

func hl7SendCommitsAndAcknowledges(t *testing.T, dir string, files, want []string) {
	a := newAddrs(t)
	s, _ := up(t, t.TempDir(), a)
	args := []string{"hl7", "send", "--addr", a.mllp}
	for _, f := range files {
		args = append(args, filepath.Join(dir, f))
	}
	out, err := exec.Command(sinewBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sinew hl7 send: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("answers:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// Garbage is answered AR and sending exits non-zero.
	bad := exec.Command(sinewBin, "hl7", "send", "--addr", a.mllp, "-")
	bad.Stdin = strings.NewReader("MSH|^^\\&|X|Y|||||ADT^A01|B1|P|2.5\rPID|1\r")
	if out, err := bad.CombinedOutput(); err == nil || !strings.HasPrefix(string(out), "AR B1") {
		t.Errorf("bad message: %v\n%s", err, out)
	}

	ctx := context.Background()
	st, err := s.js(t).Stream(ctx, "HL7_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(files))+1 { // + the rejected one, kept
		t.Errorf("HL7_IN holds %d messages, want %d", info.State.Msgs, len(files)+1)
	}
	if out, err := s.cli(t, "audit", "verify"); err != nil || !strings.Contains(out, "chains intact") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	s.stop(t)
}
