package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/reason"
)

// permanentOnly is a pure package's error: permanent by its method alone,
// without importing bus.
type permanentOnly struct{}

func (permanentOnly) Error() string   { return "pure failure" }
func (permanentOnly) Permanent() bool { return true }

func TestDeadLettersRecordTheReasonCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
		kind string
		code reason.Code
	}{
		{"coded and permanent by the catalogue", func() error { return reason.New(reason.HL7TableValueNotFound, "RXD-2 code not in crosswalk items") },
			dlq.KindPermanent, reason.HL7TableValueNotFound},
		{"bus.Permanent without a code", func() error { return bus.Permanent(errors.New("bad")) }, dlq.KindPermanent, reason.BusPermanent},
		{"Permanent method without bus", func() error { return permanentOnly{} }, dlq.KindPermanent, reason.BusPermanent},
		{"transient until exhausted", func() error { return errors.New("502 bad gateway") }, dlq.KindExhausted, reason.BusRetriesExhausted},
		{"panic", func() error { panic("boom") }, dlq.KindPermanent, reason.BusHandlerPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.run(t, e.bus, func(ctx context.Context, d *bus.Delivery) error { return tc.err() })
			e.publish(t, "1")
			var dl []*dlq.Entry
			waitFor(t, "dead letter", 10*time.Second, func() bool { dl = e.deadLetters(t); return len(dl) == 1 })
			if l := dl[0].Letter; l.Kind != tc.kind || reason.Code(l.ReasonCode) != tc.code {
				t.Errorf("kind %s code %q, want %s %s (reason %q)", l.Kind, l.ReasonCode, tc.kind, tc.code, l.Reason)
			}
		})
	}
}
