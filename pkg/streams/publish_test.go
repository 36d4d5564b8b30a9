package streams

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	tests := []struct {
		name, in string
		want     jetstream.PubAck
		wantErr  string
	}{
		{"plain", `{"stream":"HL7_IN","seq":42}`, jetstream.PubAck{Stream: "HL7_IN", Sequence: 42}, ""},
		{"duplicate as the server writes it", `{"stream":"HL7_IN","seq":7,"duplicate": true}`, jetstream.PubAck{Stream: "HL7_IN", Sequence: 7, Duplicate: true}, ""},
		{"domain", `{"stream":"RESULTS","domain":"hub","seq":3}`, jetstream.PubAck{Stream: "RESULTS", Domain: "hub", Sequence: 3}, ""},
		{"other order (slow path)", `{"seq":9,"stream":"AUDIT"}`, jetstream.PubAck{Stream: "AUDIT", Sequence: 9}, ""},
		{"batch (slow path)", `{"stream":"S","seq":5,"batch":"b1","count":2}`, jetstream.PubAck{Stream: "S", Sequence: 5}, ""},
		{"error", `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"KV_x","seq":0}`, jetstream.PubAck{}, "wrong last sequence: 3"},
		{"no stream", `{"seq":1}`, jetstream.PubAck{}, jetstream.ErrInvalidJSAck.Error()},
		{"not JSON", `+OK`, jetstream.PubAck{}, jetstream.ErrInvalidJSAck.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePubAck([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	var apiErr *jetstream.APIError
	_, err := ParsePubAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`))
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Errorf("API error not kept: %v", err)
	}
}

// FuzzParsePubAck checks the hand-read shapes against encoding/json: where
// the fast path accepts an answer, encoding/json must read the same ack.
func FuzzParsePubAck(f *testing.F) {
	for _, s := range []string{`{"stream":"HL7_IN","seq":42}`, `{"stream":"A","seq":7,"duplicate": true}`,
		`{"stream":"R","domain":"hub","seq":3}`, `{"stream":"A\"B","seq":1}`, `{"stream":"A","seq":18446744073709551616}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastPubAck(b)
		if !ok {
			return
		}
		var slow jetstream.PubAck
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", b, err)
		}
		if *fast != slow {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, *fast, slow)
		}
	})
}
