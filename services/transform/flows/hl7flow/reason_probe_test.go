package hl7flow_test

import (
	"fmt"
	"testing"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

func TestMapperErrorsArePermanentWithTable0357Codes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want reason.Code
	}{
		{&hl7flow.FieldError{Code: 101}, reason.HL7RequiredFieldMissing},
		{&hl7flow.FieldError{Code: 102}, reason.HL7DataType},
		{&hl7flow.FieldError{Code: 104}, reason.HL7ValueTooLong},
		{&hl7flow.UnmappedError{Kind: "items"}, reason.HL7TableValueNotFound},
	} {
		wrapped := fmt.Errorf("transform: %w", tc.err)
		if got := reason.Of(wrapped); got != tc.want || !bus.IsPermanent(wrapped) {
			t.Errorf("%T code %q permanent %v, want %s and permanent", tc.err, got, bus.IsPermanent(wrapped), tc.want)
		}
	}
}
