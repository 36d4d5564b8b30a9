package console

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodePayloadByPath: HL7 by segment, field, repetition and
// component path (golden files under testdata/), JSON by leaf path,
// anything else not decoded.
func TestDecodePayloadByPath(t *testing.T) {
	for _, tt := range []struct{ name, in, kind string }{
		{"hl7", "MSH|^~\\&|WILLOW|W|||20261126||RDS^O13|CTL-B|P|2.5\rPID|1||MRN-1^^^W^MR~ALT-2||SYNTHETIC^TEST\rRXD|1|0781-3207-95^Drug \\T\\ Co^NDC\rNTE|1\rNTE|2||second note\r", "hl7"},
		{"json", `{"resourceType":"Practitioner","id":"p1","name":[{"family":"Synthetic","given":["Test"]}],"active":true,"x":null,"n":1.50}`, "json"},
		{"text", "not a message", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kind, fields := decodePayload([]byte(tt.in))
			if kind != tt.kind {
				t.Fatalf("kind %q, want %q", kind, tt.kind)
			}
			var b strings.Builder
			for _, f := range fields {
				b.WriteString(f.Path + "\t" + f.Value + "\n")
			}
			golden := filepath.Join("testdata", "decode-"+tt.name+".golden")
			if os.Getenv("SINEW_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("decoded:\n%s\nwant:\n%s", b.String(), want)
			}
		})
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte("MSH|^~\\&|A|B|||20261126||ADT^A01|1|P|2.5\rPID|1||X^^^Y~Z"))
	f.Add([]byte(`{"a":[1,{"b":"c"}]}`))
	f.Add([]byte("MSH|"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, fields := decodePayload(b)
		if kind == "" && fields != nil {
			t.Fatal("fields without a kind")
		}
		if len(fields) > maxFields {
			t.Fatalf("%d fields", len(fields))
		}
	})
}
