package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestRedactor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" means unchanged
	}{
		{
			name: "no PHI",
			in:   `{"level":"info","service":"ingest","stream":"HL7_IN","seq":42,"message":"committed"}` + "\n",
		},
		{
			name: "top-level key",
			in:   `{"level":"info","mrn":"12345","message":"x"}` + "\n",
			want: `{"level":"info","mrn":"[REDACTED]","message":"x"}` + "\n",
		},
		{
			name: "whole nested object under a denied key",
			in:   `{"patient":{"id":"1","given":"Ann"},"ok":1}`,
			want: `{"patient":"[REDACTED]","ok":1}`,
		},
		{
			name: "deep nesting",
			in:   `{"a":{"b":{"c":{"SSN":123,"d":4}}}}`,
			want: `{"a":{"b":{"c":{"SSN":"[REDACTED]","d":4}}}}`,
		},
		{
			name: "objects inside arrays",
			in:   `{"items":[{"ssn":"1"},{"id":2,"Phone":"555"},[{"email":"a@b"}],3]}`,
			want: `{"items":[{"ssn":"[REDACTED]"},{"id":2,"Phone":"[REDACTED]"},[{"email":"[REDACTED]"}],3]}`,
		},
		{
			name: "case and separator variants",
			in:   `{"Patient_Name":"a","FIRST_NAME":"b","firstName":"c","birthDate":"d","Last-Name":"e","DOB":"f","Hl7":"g"}`,
			want: `{"Patient_Name":"[REDACTED]","FIRST_NAME":"[REDACTED]","firstName":"[REDACTED]","birthDate":"[REDACTED]","Last-Name":"[REDACTED]","DOB":"[REDACTED]","Hl7":"[REDACTED]"}`,
		},
		{
			name: "every value kind",
			in:   `{"dob":null,"raw":[1,{"x":2}],"hl7":true,"pid":-1.5e3,"body":"","payload":{}}`,
			want: `{"dob":"[REDACTED]","raw":"[REDACTED]","hl7":"[REDACTED]","pid":"[REDACTED]","body":"[REDACTED]","payload":"[REDACTED]"}`,
		},
		{
			name: "value mentioning a denied word stays",
			in:   `{"note":"mrn missing","field":"mrn","error":"segment PID field \"mrn\": required","list":["ssn","dob"]}` + "\n",
		},
		{
			name: "keys merely containing a denied word stay",
			in:   `{"stream_name":"HL7_IN","mrn_count":3,"hostname":"h","bodyless":true}`,
		},
		{
			name: "whitespace, numbers and other fields kept byte for byte",
			in:   `{ "amount" : 1.50 , "mrn" : "1" , "n" : 1e2 , "s" : "\u00e9\n" }`,
			want: `{ "amount" : 1.50 , "mrn" : "[REDACTED]" , "n" : 1e2 , "s" : "\u00e9\n" }`,
		},
		{
			name: "non-ASCII text around a denied field",
			in:   `{"family":"Müller","msg":"ünï ✓"}`,
			want: `{"family":"[REDACTED]","msg":"ünï ✓"}`,
		},
		{
			name: "escaped key is decoded before matching",
			in:   `{"m\u0072n":"1","ok":true}`,
			want: `{"m\u0072n":"[REDACTED]","ok":true}`,
		},
		{
			name: "escaped key that is not denied",
			in:   `{"a\"b":"mrn","c\\":1}`,
		},
		{
			name: "console line passes through",
			in:   "2026-01-02T03:04:05Z INF committed mrn=12345 service=ingest\n",
		},
		{
			name: "non-object line with a JSON-looking key passes through",
			in:   `ERROR "mrn": 12345` + "\n",
		},
		{
			name: "JSON array line passes through",
			in:   `[{"mrn":"1"}]` + "\n",
		},
		{
			name: "malformed JSON with a denied key is withheld",
			in:   `{"mrn":"12345","x":` + "\n",
			want: withheld + "\n",
		},
		{
			name: "trailing data is withheld",
			in:   `{"mrn":1} {"ssn":2}`,
			want: withheld,
		},
		{
			name: "malformed JSON without a denied key passes through",
			in:   `{"x":` + "\n",
		},
		{
			name: "several lines in one write",
			in:   "plain\n" + `{"a":1}` + "\n" + `{"name":"Doe"}` + "\n\n" + `{"b":2,"email":"x"}`,
			want: "plain\n" + `{"a":1}` + "\n" + `{"name":"[REDACTED]"}` + "\n\n" + `{"b":2,"email":"[REDACTED]"}`,
		},
		{
			name: "CRLF line ending kept",
			in:   `{"mrn":"1"}` + "\r\n",
			want: `{"mrn":"[REDACTED]"}` + "\r\n",
		},
		{
			name: "empty write",
			in:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			if want == "" {
				want = tt.in
			}
			var buf bytes.Buffer
			n, err := NewRedactor(&buf).Write([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.in) {
				t.Errorf("Write returned %d, want %d", n, len(tt.in))
			}
			if got := buf.String(); got != want {
				t.Errorf("\n in: %s\ngot: %s\nwant: %s", tt.in, got, want)
			}
		})
	}
}

func TestDeniedKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{"name", true}, {"patient", true}, {"patient_name", true}, {"first_name", true},
		{"last_name", true}, {"given", true}, {"family", true}, {"mrn", true}, {"ssn", true},
		{"dob", true}, {"birth_date", true}, {"birthdate", true}, {"address", true},
		{"phone", true}, {"email", true}, {"payload", true}, {"body", true}, {"raw", true},
		{"message_body", true}, {"hl7", true}, {"pid", true},
		{"MESSAGE_BODY", true}, {"patientName", true}, {"p_a_t_i_e_n_t", true},
		{"", false}, {"message", false}, {"level", false}, {"service", false}, {"names", false},
		{"mrns", false}, {"patient_id_hash", false}, {"a_very_long_key_that_is_safe", false},
	}
	for _, tt := range tests {
		if got := deniedKey([]byte(tt.key)); got != tt.want {
			t.Errorf("deniedKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// overlapWriter checks that the Redactor, not the writer, serialises
// writes: it fails the test when two writes overlap.
type overlapWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *overlapWriter) Write(p []byte) (int, error) {
	if !w.mu.TryLock() {
		w.t.Error("concurrent Write on the underlying writer")
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestRedactorConcurrent(t *testing.T) {
	t.Parallel()
	const writers, lines = 8, 200
	w := &overlapWriter{t: t}
	r := NewRedactor(w)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				var line string
				if i%2 == 0 {
					line = fmt.Sprintf(`{"g":%d,"i":%d,"mrn":"MRN-%d-%d"}`+"\n", g, i, g, i)
				} else {
					line = fmt.Sprintf(`{"g":%d,"i":%d}`+"\n", g, i)
				}
				if _, err := r.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	out := w.buf.String()
	if strings.Contains(out, "MRN-") {
		t.Error("an MRN leaked")
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, line := range got {
		if !json.Valid([]byte(line)) {
			t.Fatalf("interleaved or broken line: %s", line)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRedactorWriteError(t *testing.T) {
	t.Parallel()
	for _, line := range []string{`{"a":1}`, `{"mrn":1}`} {
		n, err := NewRedactor(failWriter{}).Write([]byte(line))
		if n != 0 || err == nil || err.Error() != "disk full" {
			t.Errorf("Write(%s) = %d, %v; want 0, disk full", line, n, err)
		}
	}
}

// A typical line: no deny-listed key, written without parsing or copying.
func BenchmarkRedactorFastPath(b *testing.B) {
	benchClean := []byte(`{"level":"info","service":"transform","flow":"willow-inventory","stream":"HL7_IN","seq":1234567,"deliveries":1,"id":"3f9a0c1d2e4b5a69","time":"2026-01-02T03:04:05.123456Z","message":"mapped dispense to inventory transaction"}` + "\n")
	r := NewRedactor(discard{})
	b.SetBytes(int64(len(benchClean)))
	b.ReportAllocs()
	for b.Loop() {
		r.Write(benchClean)
	}
}

// A line of the same size with PHI fields, parsed and rewritten.
func BenchmarkRedactorSlowPath(b *testing.B) {
	benchPHI := []byte(`{"level":"warn","service":"transform","flow":"willow-inventory","patient":{"mrn":"123","name":"Doe^John"},"seq":1234567,"items":[{"ndc":"0001","raw":"RXD|1|..."}],"time":"2026-01-02T03:04:05.123456Z","message":"unmapped NDC"}` + "\n")
	r := NewRedactor(discard{})
	b.SetBytes(int64(len(benchPHI)))
	b.ReportAllocs()
	for b.Loop() {
		r.Write(benchPHI)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
