package hl7_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/hl7"
)

func addSeeds(f *testing.F) {
	synthetic, _ := filepath.Glob(filepath.Join("testdata", "synthetic", "*.hl7"))
	// The corpus, when present, only adds seeds.
	for _, files := range [][]string{synthetic, corpus.Seeds(f, corpusSub, "*.hl7")} {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|||1^^^A&B&C~2||X\\S\\Y\\XC3A9\\\r"))
	f.Add([]byte("MSH#$*!@"))
}

// FuzzParse: any input either fails with an error or yields a message
// whose every field can be read, which encodes and re-parses to the same
// segments, and whose ACK is itself a parseable message.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7.Parse(data)
		if err != nil {
			if hl7.ErrorOf(err) == nil {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			nak := hl7.Nak(data, hl7.AckOptions{Code: hl7.AR, Errors: []*hl7.ParseError{hl7.ErrorOf(err)}})
			if _, err := hl7.Parse(nak); err != nil {
				t.Fatalf("NAK does not parse: %v\n%q", err, nak)
			}
			return
		}
		for i := 0; i < m.SegmentCount() && i < 50; i++ {
			name := m.SegmentName(i)
			if len(name) != 3 {
				continue
			}
			for field := 1; field <= 12; field++ {
				for _, suffix := range []string{"", "(1)", "-2", "-1-2", "(1)-3-1"} {
					p, err := hl7.ParsePath(name + "-" + strconv.Itoa(field) + suffix)
					if err != nil {
						continue
					}
					_ = m.Value(p)
				}
			}
		}
		if perr := m.CheckRequired(); perr != nil && (perr.Code != hl7.CodeRequiredField || perr.Location() == "") {
			t.Fatalf("CheckRequired: %+v", perr)
		}
		enc := m.Encode()
		again, err := hl7.Parse(enc)
		if err != nil {
			t.Fatalf("re-parse of Encode failed: %v", err)
		}
		if again.SegmentCount() != m.SegmentCount() || !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("Encode is not stable: %d vs %d segments", again.SegmentCount(), m.SegmentCount())
		}
		ack := m.Ack(hl7.AckOptions{Code: hl7.AE, Text: "x|y^z"})
		back, err := hl7.Parse(ack)
		if err != nil {
			t.Fatalf("ACK does not parse: %v\n%q", err, ack)
		}
		if back.Get("MSA-1") != "AE" {
			t.Fatalf("ACK MSA-1 = %q", back.Get("MSA-1"))
		}
	})
}

// FuzzUnescape: Unescape never panics, and Escape then Unescape is the identity.
func FuzzUnescape(f *testing.F) {
	f.Add([]byte(`a\F\b\S\c\T\d\R\e\E\f\X0D0A\\.br\\H\x\N\`))
	f.Add([]byte(`\X\\XZ\\X0\\\\`))
	f.Add([]byte("plain|^~&\\\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []hl7.Delimiters{hl7.DefaultDelimiters, {Field: '#', Component: '$', Repetition: '*', Escape: '!', Subcomponent: '@'}} {
			_ = hl7.Unescape(nil, data, d)
			esc := hl7.Escape(nil, data, d)
			if back := hl7.Unescape(nil, esc, d); !bytes.Equal(back, data) {
				t.Fatalf("round trip: %q -> %q -> %q", data, esc, back)
			}
		}
	})
}

// FuzzSplit: Split never panics and every message it returns starts with MSH.
func FuzzSplit(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\rBTS|2\rFTS|1\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, _, err := hl7.Split(data)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if !bytes.HasPrefix(bytes.TrimPrefix(m, []byte{0xEF, 0xBB, 0xBF}), []byte("MSH")) {
				t.Fatalf("message does not start with MSH: %q", m)
			}
		}
	})
}
