package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
)

// A rejected message kept in HL7_IN carries the reason code of its table
// 0357 error, which transform records in the dead letter.
func TestRejectedMessagesCarryTheirReasonCode(t *testing.T) {
	e := start(t, streams.DefaultOptions(), nil)
	for _, msg := range []string{
		"hello, this is not HL7",
		"MSH|^^\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A01|BAD1|P|2.5\rPID|1\r",
	} {
		if _, err := e.client.Send(context.Background(), []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range e.stored(t) {
		code := reason.Code(s.Header.Get(reason.Header))
		tok := s.Subject[strings.LastIndexByte(s.Subject, '.')+1:] // the 0357 code
		if _, ok := reason.Lookup(code); !ok || string(code) != "SINEW-HL7-"+tok {
			t.Errorf("kept on %s with reason code %q", s.Subject, code)
		}
	}
}
