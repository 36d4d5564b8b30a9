package hl7_test

import (
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/hl7"
)

// benchFiles are the files timed here and by the peer benchmark
// (../shared/peers/hl7-parse/run) on the same messages.
var benchFiles = []string{
	"ADT_A01__hapi_cr.hl7",       // 0.7 KB ADT
	"ADT_A01__fhirconv_rich.hl7", // 8.6 KB ADT
	"RDS_O13__fhirconv_01_rxd_ft1.hl7",
	"ORU_R01__mirth_large_lf.hl7",
}

var pid31 = hl7.MustPath("PID-3-1")

// BenchmarkParse is parse plus one field access per message (PID-3-1), the
// same work the peer benchmark times for @medplum/core and simple-hl7.
func BenchmarkParse(b *testing.B) {
	for _, name := range benchFiles {
		data := corpus.ReadFile(b, corpusSub+"/"+name)
		msg := normalize(data) // the wire form: CR terminators, no BOM
		// A receiver reuses its Message: ParseInto allocates nothing.
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			var m hl7.Message
			var o hl7.Options
			for b.Loop() {
				if err := o.ParseInto(&m, msg); err != nil {
					b.Fatal(err)
				}
				if v, _ := m.Raw(pid31); len(v) == 0 {
					b.Fatal("no PID-3-1")
				}
			}
		})
		// A new Message per parse: three allocations.
		b.Run(name+"/new", func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := hl7.Parse(msg)
				if err != nil {
					b.Fatal(err)
				}
				if v, _ := m.Raw(pid31); len(v) == 0 {
					b.Fatal("no PID-3-1")
				}
			}
		})
	}
}

// BenchmarkValue is decoding one field to a string on a parsed message.
func BenchmarkValue(b *testing.B) {
	data := corpus.ReadFile(b, corpusSub+"/RDS_O13__fhirconv_01_rxd_ft1.hl7")
	m, err := hl7.Parse(normalize(data))
	if err != nil {
		b.Fatal(err)
	}
	p := hl7.MustPath("RXD-2-2")
	b.ReportAllocs()
	for b.Loop() {
		if m.Value(p) == "" {
			b.Fatal("empty")
		}
	}
}
