package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger(&buf, DefaultConfig(), "ingest")
	log.Debug().Msg("hidden at info")
	log.Info().Str("mrn", "12345").Str("flow", "willow-inventory").Msg("received")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{
		"level":   "info",
		"service": "ingest",
		"mrn":     "[REDACTED]",
		"flow":    "willow-inventory",
		"message": "received",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	ts, _ := got["time"].(string)
	when, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("time %q: %v", ts, err)
	}
	if d := time.Since(when); d < 0 || d > time.Minute {
		t.Errorf("time %s is not now", ts)
	}
}

func TestNewLoggerLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level string
		want  []string // levels written, of debug, info, warn, error
	}{
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"INFO", []string{"info", "warn", "error"}},
		{"", []string{"info", "warn", "error"}},
		{"warn", []string{"warn", "error"}},
		{"error", []string{"error"}},
		{"bogus", []string{"info", "warn", "error"}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := NewLogger(&buf, Config{LogLevel: tt.level}, "svc")
			log.Debug().Msg("")
			log.Info().Msg("")
			log.Warn().Msg("")
			log.Error().Msg("")
			var got []string
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var line struct{ Level string }
				if err := dec.Decode(&line); err != nil {
					t.Fatal(err)
				}
				got = append(got, line.Level)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewLoggerConsole(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger(&buf, Config{LogFormat: "console"}, "loader")
	log.Warn().Str("ssn", "123-45-6789").Int("attempt", 2).Msg("retrying")
	out := buf.String()
	if strings.Contains(out, "6789") {
		t.Errorf("console output leaked the SSN: %s", out)
	}
	for _, want := range []string{"WRN", "retrying", "service=loader", "attempt=2", "[REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output %q lacks %q", out, want)
		}
	}
	if strings.HasPrefix(out, "{") {
		t.Errorf("console output is JSON: %s", out)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", DefaultConfig(), ""},
		{"zero", Config{}, ""},
		{"console debug", Config{LogLevel: "debug", LogFormat: "console"}, ""},
		{"host:port", Config{OTLPEndpoint: "otel:4318", OTLPInsecure: true}, ""},
		{"URL", Config{OTLPEndpoint: "https://otel.example:4318/v1/traces"}, ""},
		{"bad level", Config{LogLevel: "verbose"}, `log_level "verbose"`},
		{"bad format", Config{LogFormat: "xml"}, `log_format "xml"`},
		{"bad scheme", Config{OTLPEndpoint: "grpc://otel:4317"}, "want an http or https URL"},
		{"no host", Config{OTLPEndpoint: "http://"}, "want an http or https URL"},
		{"path without scheme", Config{OTLPEndpoint: "otel:4318/v1/traces"}, "want host:port or a URL"},
		{"unparseable URL", Config{OTLPEndpoint: "http://[::1"}, "otlp_endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
