package mfn

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
)

func sample() Message {
	return Message{
		Header: Header{SendingApp: "SINEW", SendingFacility: "STMARYS", ReceivingApp: "EPICPROV", ReceivingFacility: "STMARYS",
			ControlID: "SNW0001", Time: time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)},
		Event: Add, Effective: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Provider: Provider{PersonNumber: "P1001", AssignmentNumber: "E1001-1", Family: "DOE", Given: "JANE",
			ProviderType: "MD", Active: true, Department: "CARDIOLOGY", Job: "PHYS", Manager: "P0007",
			NPI: "1234567893", Specialty: "Cardiology",
			Credentials: []Credential{{Number: "036-123456", Type: "MD", State: "IL"}}},
	}
}

func TestBuildGolden(t *testing.T) {
	got, err := Build(sample())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "mfn_m02_add.hl7")
	if os.Getenv("UPDATE") != "" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.ReplaceAll(string(got), "\r", "\n"), strings.ReplaceAll(string(want), "\r", "\n"))
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range []Message{sample(), func() Message {
		m := sample()
		m.Event, m.Provider.SER, m.Provider.EMP, m.Provider.Active = Deactivate, "SER100", "EMP100", false
		m.Provider.Family = "O|BRIEN^X" // delimiters escaped
		return m
	}()} {
		raw, err := Build(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Provider, m.Provider) || back.Event != m.Event || !back.Effective.Equal(m.Effective) {
			t.Fatalf("round trip:\n%+v\n%+v", back.Provider, m.Provider)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	good, _ := Build(sample())
	tests := []struct{ name, from, to, path string }{
		{"event", "MFE|MAD|", "MFE|XXX|", "MFE-1"},
		{"key system", "P1001^^FUSIONPN|CE", "P1001^^OTHER|CE", "MFE-4-3"},
		{"status", "|A|CARDIOLOGY", "|Q|CARDIOLOGY", "STF-7"},
		{"npi", "1234567893^NPI", "1234567890^NPI", "PRA-6(0)-1"},
		{"name", "|DOE^JANE|", "|^JANE|", "STF-3-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tt.from, tt.to, 1)
			if bad == string(good) {
				t.Fatal("replacement did not apply")
			}
			_, err := Parse([]byte(bad))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tt.path {
				t.Fatalf("err = %v, want field %s", err, tt.path)
			}
		})
	}
}

func TestValidNPI(t *testing.T) {
	for s, ok := range map[string]bool{"1234567893": true, "1234567890": false, "123456789": false, "12345678a3": false, "1245319599": true} {
		if ValidNPI(s) != ok {
			t.Errorf("ValidNPI(%s) != %v", s, ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Build(sample())
	f.Add(good)
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20260101||MFN^M02|1|P|2.5.1\rMFE|MAD\rSTF|x"))
	sup, _ := BuildSupplier(Header{ControlID: "C1", Time: time.Now()}, time.Now(), Supplier{Number: "1", Name: "A", Active: true, Sites: []SupplierSite{{Site: "S"}}})
	f.Add(sup)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if msg, err := hl7.Parse(raw); err == nil && IsSupplier(msg) {
			if s, err := ReadSupplier(msg); err == nil && s.Number == "" {
				t.Fatal("supplier read without a number")
			}
		}
		m, err := Parse(raw)
		if err != nil {
			return
		}
		// What parses builds again, and reads back the same provider.
		m.Header.Time = time.Now()
		raw2, err := Build(m)
		if err != nil {
			t.Fatalf("parsed record does not build: %v", err)
		}
		back, err := Parse(raw2)
		if err != nil {
			t.Fatalf("built record does not parse: %v", err)
		}
		if !reflect.DeepEqual(back.Provider, m.Provider) {
			t.Fatalf("round trip:\n%+v\n%+v", back.Provider, m.Provider)
		}
	})
}

func TestSupplierRoundTrip(t *testing.T) {
	s := Supplier{Number: "9001", Name: "Acme Medical Supply", Active: true, Sites: []SupplierSite{
		{Site: "ACME-MAIN", ProcurementBU: "Main Hospital BU", Address: "100 Main Street", City: "Springfield", PostalCode: "62701", Country: "US"},
	}}
	raw, err := BuildSupplier(Header{SendingApp: "SINEW", ReceivingApp: "EPICSUP", ControlID: "C1", Time: time.Now()}, time.Now(), s)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := hl7.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadSupplier(msg)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("%+v %v", back, err)
	}
	bad, _ := hl7.Parse([]byte(strings.Replace(string(raw), "|A|ACME", "|X|ACME", 1)))
	var fe *FieldError
	if _, err := ReadSupplier(bad); !errors.As(err, &fe) || fe.Path != "ZSU-2" {
		t.Fatalf("bad status: %v", err)
	}
}
