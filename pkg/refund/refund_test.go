package refund

import (
	"errors"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/money"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
		err  error
	}{
		{"one refund", []string{"INV-1", "RF000123"}, "RF000123", nil},
		{"same refund twice", []string{"RF000123", "RF000123"}, "RF000123", nil},
		{"none", []string{"INV-1", "RFX"}, "", ErrUnmatched},
		{"two refunds", []string{"RF1", "RF2"}, "", ErrAmbiguous},
	}
	for _, tt := range tests {
		got, err := Match(tt.in, "")
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: %q %v", tt.name, got, err)
		}
	}
}

func TestBuildRead(t *testing.T) {
	amt, _ := money.Parse("125.40")
	p := Payment{Reference: "RF000123", PaymentNumber: "88001", Status: "CLEARED", Amount: amt, Currency: "USD", At: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	msg, err := hl7.Parse(Build(Header{SendingApp: "SINEW", ReceivingApp: "RESOLUTE", ControlID: "C1", Time: time.Now()}, p))
	if err != nil || !Is(msg) {
		t.Fatal(err)
	}
	back, err := Read(msg)
	if err != nil || back != p {
		t.Fatalf("%+v %v", back, err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(Build(Header{ControlID: "C1", Time: time.Now()}, Payment{Reference: "RF1", Status: "ISSUED", Currency: "USD"}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := hl7.Parse(raw)
		if err != nil || !Is(msg) {
			return
		}
		if p, err := Read(msg); err == nil && p.Reference == "" {
			t.Fatal("read without a reference")
		}
	})
}

// TestSyntheticRefundsMatchAndAreExact: every synthetic refund is matched
// by the default prefix, unique, and an exact positive amount in cents.
func TestSyntheticRefundsMatchAndAreExact(t *testing.T) {
	seen := map[string]bool{}
	for n := 1; n <= 1000; n++ {
		ref, amt := Synthetic(n)
		got, err := Match([]string{"INV-1", ref}, "")
		if err != nil || got != ref || seen[ref] || amt <= 0 {
			t.Fatalf("refund %d: %s %s: %v (seen %v)", n, ref, amt, err, seen[ref])
		}
		seen[ref] = true
	}
	if _, amt := Synthetic(1); amt.String() != "89.19" {
		t.Fatalf("refund 1 amount %s, want 89.19", amt)
	}
}
