package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
)

// withCodes adds three coded letters to the fixture's three uncoded ones:
// two unmapped codes (SINEW-HL7-103) and one Fusion refusal.
func withCodes(t *testing.T, f *dlqFixture) {
	t.Helper()
	for i, c := range []reason.Code{reason.HL7TableValueNotFound, reason.HL7TableValueNotFound, reason.FusionOnhandControlExists} {
		d := &sinewv1.DeadLetter{Stream: streams.FusionCmd, Consumer: streams.LoaderFusion, Subject: "fusion.cmd.willow-inventory.txn",
			StreamSeq: uint64(100 + i), Payload: []byte{}, PayloadAvailable: true, Reason: "permanent: coded", ReasonCode: string(c),
			Kind: dlq.KindPermanent, Deliveries: 1, DeadAt: timestamppb.New(time.Now()), Flow: "willow-inventory", RecordedBy: "bus:loader"}
		if _, err := dlq.Write(context.Background(), f.js, d); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDLQListSelectsByReasonCode(t *testing.T) {
	f := newDLQFixture(t)
	withCodes(t, f)
	for _, tc := range []struct {
		code string
		want int
	}{
		{"SINEW-HL7-103", 2},
		{"sinew-hl7-103", 2},
		{"SINEW-FUSION-002", 1},
		{"-", 3},
		{"SINEW-BUS-001", 0},
	} {
		out, stderr, code := f.cli(t, "", "dlq", "list", "--json", "--reason-code", tc.code)
		if code != 0 {
			t.Fatalf("--reason-code %s: exit %d: %s", tc.code, code, stderr)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var v letterView
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatal(err)
			}
			if tc.code != "-" && !strings.EqualFold(v.ReasonCode, tc.code) || tc.code == "-" && v.ReasonCode != "" {
				t.Errorf("--reason-code %s listed %q", tc.code, v.ReasonCode)
			}
			n++
		}
		if n != tc.want {
			t.Errorf("--reason-code %s: %d letters, want %d", tc.code, n, tc.want)
		}
	}
	out, _, _ := f.cli(t, "", "dlq", "list", "--reason-code", "SINEW-FUSION-002")
	if !strings.Contains(out, "CODE") || !strings.Contains(out, "SINEW-FUSION-002") {
		t.Errorf("table lacks the code column:\n%s", out)
	}
	// --code is the flag; --reason-code is the same. --reason is never a
	// code (on replay it is why).
	want, _, _ := f.cli(t, "", "dlq", "list", "--json", "--reason-code", "SINEW-HL7-103")
	if got, stderr, code := f.cli(t, "", "dlq", "list", "--json", "--code", "SINEW-HL7-103"); code != 0 || got != want {
		t.Errorf("dlq list --code: exit %d %s\n%s\nwant\n%s", code, stderr, got, want)
	}
	if got, stderr, code := f.cli(t, "", "dlq", "reasons", "--json", "--code", "SINEW-HL7-103"); code != 0 || strings.Count(got, "\n") != 1 || !strings.Contains(got, "SINEW-HL7-103") {
		t.Errorf("dlq reasons --code: exit %d %s\n%s", code, stderr, got)
	}
}

func TestDLQReasonsCountsPerCodeWithTheAction(t *testing.T) {
	f := newDLQFixture(t)
	withCodes(t, f)
	out, stderr, code := f.cli(t, "", "dlq", "reasons", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := map[string]reasonCount{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c reasonCount
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		got[c.Code] = c
	}
	en, _ := reason.Lookup(reason.HL7TableValueNotFound)
	if c := got["SINEW-HL7-103"]; c.Count != 2 || c.Action != en.Action {
		t.Errorf("SINEW-HL7-103: %+v", c)
	}
	if got["SINEW-FUSION-002"].Count != 1 || got[""].Count != 3 || len(got) != 3 {
		t.Errorf("counts %+v", got)
	}
	out, _, _ = f.cli(t, "", "dlq", "reasons", "--flow", "resolute-gl")
	if !strings.Contains(out, "WHAT TO DO") || strings.Contains(out, "SINEW-HL7-103") || !strings.Contains(out, "-  ") {
		t.Errorf("--flow resolute-gl:\n%s", out)
	}
}
