// Package telemetry gives every Sinew service its logs, traces, metrics and
// health endpoints, built so that protected health information (PHI) does
// not leak through them.
//
// Nothing here touches process-wide state: there is no global logger,
// tracer provider, propagator or Prometheus registry. Each service builds
// its own from a Config and passes them down, which is what lets `sinew up`
// run every service in one process without them stepping on each other.
//
// Logs are zerolog JSON lines passed through a Redactor, which replaces the
// values of fields whose keys are on a PHI deny list. The deny list is a
// safety net, not a licence: log identifiers as keyed hashes (audit.PatientRef) and keep
// message payloads out of log fields altogether.
package telemetry

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config holds the telemetry settings shared by every service. It is meant
// to be embedded in a service's configuration struct.
type Config struct {
	// LogLevel is one of debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is "json" or "console" (human-readable, for development).
	LogFormat string `yaml:"log_format"`
	// OTLPEndpoint is the OTLP/HTTP collector traces are exported to, as
	// host:port (the default /v1/traces path is used) or as a URL (its
	// scheme decides between HTTP and HTTPS; a URL without a path gets
	// /v1/traces). Empty means traces are not exported.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPInsecure selects plain HTTP for a host:port OTLPEndpoint.
	OTLPInsecure bool `yaml:"otlp_insecure"`
}

// EnvOTLPEndpoint is the environment variable every service (and sinew
// up) reads OTLPEndpoint from when its own setting is empty: one collector
// for a whole deployment.
const EnvOTLPEndpoint = "SINEW_OTLP_ENDPOINT"

// DefaultConfig returns the defaults: info level, JSON lines, no trace export.
func DefaultConfig() Config {
	return Config{LogLevel: "info", LogFormat: "json"}
}

// Validate reports settings NewLogger would otherwise quietly replace with
// defaults. Services call it after loading their configuration.
func (c Config) Validate() error {
	if _, ok := parseLevel(c.LogLevel); !ok {
		return fmt.Errorf("telemetry: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "", "json", "console":
	default:
		return fmt.Errorf("telemetry: log_format %q: want json or console", c.LogFormat)
	}
	if _, err := exporterOptions(c); err != nil {
		return err
	}
	return nil
}

func parseLevel(s string) (zerolog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return zerolog.DebugLevel, true
	case "", "info":
		return zerolog.InfoLevel, true
	case "warn", "warning":
		return zerolog.WarnLevel, true
	case "error":
		return zerolog.ErrorLevel, true
	}
	return zerolog.InfoLevel, false
}

// timeFormat has a fixed width and microseconds: zerolog's own timestamp
// has whole seconds unless its package-level format is changed, which this
// package must not do.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewLogger returns a logger writing one JSON object per line to w, through
// a Redactor, with "level", "service" and "time" fields. An invalid level
// falls back to info (see Config.Validate). With LogFormat "console" the
// redacted lines are rendered for humans instead, in colour only on a
// terminal.
//
// Numbers with a unit carry it in the field name: durations are logged as
// Int64("<name>_ms", d.Milliseconds()), never with zerolog's Dur, whose
// unit is a package-level setting the line does not show.
func NewLogger(w io.Writer, cfg Config, service string) zerolog.Logger {
	level, _ := parseLevel(cfg.LogLevel)
	if cfg.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, NoColor: !isTerminal(w), TimeFormat: timeFormat}
	}
	return zerolog.New(NewRedactor(w)).
		Level(level).
		Hook(zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
			e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format(timeFormat))
		})).
		With().
		Str("service", service).
		Logger()
}

// isTerminal reports whether w is a terminal: an *os.File, or a writer
// that exposes its file's Stat, on a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
