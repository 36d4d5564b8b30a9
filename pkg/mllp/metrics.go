package mllp

import (
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sinewhq/sinew/pkg/telemetry"
)

// Connection results (label result of sinew_mllp_connections_total).
const (
	resultAccepted = "accepted"
	resultRejected = "rejected" // over MaxConns
	resultTLSError = "tls_error"
	resultEvicted  = "evicted" // an open connection closed to make room for another
)

// Framing error kinds (label kind of sinew_mllp_framing_errors_total).
const (
	kindJunk         = "junk"
	kindTooLarge     = "too_large"
	kindStartInFrame = "start_in_frame"
	kindMissingCR    = "missing_cr"
	kindTruncated    = "truncated"
	kindReadTimeout  = "read_timeout"
)

type metrics struct {
	accepted, rejected, tlsError prometheus.Counter
	evicted                      prometheus.Counter
	frames                       prometheus.Counter
	open                         prometheus.Gauge
	panics                       prometheus.Counter
	framing                      map[string]prometheus.Counter // kind -> counter, fixed at start
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	conns, err := telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_mllp_connections_total", Help: "MLLP connections, by result (accepted, rejected over a limit, tls_error, evicted: closed to make room).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	frames, err := telemetry.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sinew_mllp_frames_total", Help: "MLLP frames received and handed to the handler.",
	}))
	if err != nil {
		return nil, err
	}
	framing, err := telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_mllp_framing_errors_total", Help: "MLLP framing problems, by kind; junk counts runs of bytes between frames.",
	}, []string{"kind"}))
	if err != nil {
		return nil, err
	}
	open, err := telemetry.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sinew_mllp_open_connections", Help: "MLLP connections open now.",
	}))
	if err != nil {
		return nil, err
	}
	panics, err := telemetry.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sinew_mllp_handler_panics_total", Help: "MLLP handler panics (each closes its connection).",
	}))
	if err != nil {
		return nil, err
	}
	m := &metrics{
		accepted: conns.WithLabelValues(resultAccepted),
		rejected: conns.WithLabelValues(resultRejected),
		tlsError: conns.WithLabelValues(resultTLSError),
		evicted:  conns.WithLabelValues(resultEvicted),
		frames:   frames,
		open:     open,
		panics:   panics,
		framing:  make(map[string]prometheus.Counter),
	}
	for _, k := range []string{kindJunk, kindTooLarge, kindStartInFrame, kindMissingCR, kindTruncated, kindReadTimeout} {
		m.framing[k] = framing.WithLabelValues(k)
	}
	return m, nil
}

// framingKind names the kind of a *FramingError's cause.
func framingKind(err error) string {
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		return kindTooLarge
	case errors.Is(err, ErrStartInFrame):
		return kindStartInFrame
	case errors.Is(err, ErrMissingCR):
		return kindMissingCR
	case errors.Is(err, io.ErrUnexpectedEOF):
		return kindTruncated
	}
	return "other"
}

func (m *metrics) countFraming(kind string) {
	if c, ok := m.framing[kind]; ok {
		c.Inc()
	}
}
