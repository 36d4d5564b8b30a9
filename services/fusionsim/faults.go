package fusionsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as text ("1.5s") in JSON and YAML.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Faults are the injected failures. Zero values inject nothing.
type Faults struct {
	// HTTP faults answer (or drop) Fusion requests instead of the
	// resource; the first matching fault wins.
	HTTP []HTTPFault `json:"http,omitempty" yaml:"http"`
	// Step, when set, overrides SimConfig.Step for new waits (slow jobs).
	Step Duration `json:"step,omitempty" yaml:"step"`
	// StuckJobs makes the next N job chains stop in RUNNING until
	// Release (POST /sim/release); -1 makes every new chain stick.
	StuckJobs int `json:"stuckJobs,omitempty" yaml:"stuck_jobs"`
	// LoseCallbacks drops the next N callbacks (-1: all of them);
	// CallbackLossRate drops that fraction of the others.
	LoseCallbacks    int     `json:"loseCallbacks,omitempty" yaml:"lose_callbacks"`
	CallbackLossRate float64 `json:"callbackLossRate,omitempty" yaml:"callback_loss_rate"`
	// ReadLag, when set, overrides SimConfig.ReadLag for journals posted
	// (and inventory rows staged) from now on.
	ReadLag Duration `json:"readLag,omitempty" yaml:"read_lag"`
	// Interface408 makes the next N inventoryStagedTransactions POSTs (-1:
	// all) answer 408 after storing their row, and Interface408Rate that
	// fraction of the others: online mode timed out, the row is in the
	// interface, an invalid one with ProcessFlag 3 and its ErrorCode.
	Interface408     int     `json:"interface408,omitempty" yaml:"interface_408"`
	Interface408Rate float64 `json:"interface408Rate,omitempty" yaml:"interface_408_rate"`
}

// HTTPFault is one request-level fault.
type HTTPFault struct {
	// Status answers with this HTTP status (401, 408, 429, 500, 502, 503,
	// 504...) in Fusion's error shape.
	Status int `json:"status,omitempty" yaml:"status"`
	// Timeout hangs for Hang (default 30s), then drops the connection
	// without an answer.
	Timeout bool     `json:"timeout,omitempty" yaml:"timeout"`
	Hang    Duration `json:"hang,omitempty" yaml:"hang"`
	// After lets the request take effect first and then fails the answer:
	// the effect happened in "Fusion" but the caller cannot know.
	After bool `json:"after,omitempty" yaml:"after"`
	// RetryAfter is sent on 429 and 503 (whole seconds; default 1s).
	RetryAfter Duration `json:"retryAfter,omitempty" yaml:"retry_after"`
	// Path limits the fault to request paths containing it; Method and
	// Operation (erpintegrations OperationName) limit it further.
	Path      string `json:"path,omitempty" yaml:"path"`
	Method    string `json:"method,omitempty" yaml:"method"`
	Operation string `json:"operation,omitempty" yaml:"operation"`
	// Rate is the fraction of matching requests that fail (0 means all);
	// Count, when > 0, stops the fault after that many failures.
	Rate  float64 `json:"rate,omitempty" yaml:"rate"`
	Count int     `json:"count,omitempty" yaml:"count"`
	// Hits counts the failures injected so far (read-only).
	Hits int `json:"hits,omitempty" yaml:"-"`
}

func (f Faults) check() error {
	for i, h := range f.HTTP {
		if !h.Timeout && (h.Status < 400 || h.Status > 599) {
			return fmt.Errorf("fusionsim: fault %d: status %d: want 4xx/5xx or timeout", i, h.Status)
		}
		if h.Rate < 0 || h.Rate > 1 {
			return fmt.Errorf("fusionsim: fault %d: rate %v outside [0, 1]", i, h.Rate)
		}
	}
	if f.Interface408Rate < 0 || f.Interface408Rate > 1 {
		return fmt.Errorf("fusionsim: interface408Rate %v outside [0, 1]", f.Interface408Rate)
	}
	if f.CallbackLossRate < 0 || f.CallbackLossRate > 1 {
		return fmt.Errorf("fusionsim: callbackLossRate %v outside [0, 1]", f.CallbackLossRate)
	}
	return nil
}

func (f Faults) clone() Faults {
	f.HTTP = append([]HTTPFault(nil), f.HTTP...)
	return f
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f.clone()
	s.mu.Unlock()
	return nil
}

// Faults returns the injected faults, with their hit counts.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// Release lets every stuck job chain go on.
func (s *Server) Release() {
	s.mu.Lock()
	close(s.release)
	s.release = make(chan struct{})
	s.releases++
	s.mu.Unlock()
}

// step and readLag are the current durations. Called with s.mu held.
func (s *Server) step() time.Duration {
	if s.faults.Step > 0 {
		return time.Duration(s.faults.Step)
	}
	return s.cfg.Step
}

func (s *Server) readLag() time.Duration {
	if s.faults.ReadLag > 0 {
		return time.Duration(s.faults.ReadLag)
	}
	return s.cfg.ReadLag
}

// takeStuck decides whether a new chain sticks. Called with s.mu held.
func (s *Server) takeStuck() bool {
	switch {
	case s.faults.StuckJobs < 0:
		return true
	case s.faults.StuckJobs > 0:
		s.faults.StuckJobs--
		return true
	}
	return false
}

// takeLostCallback decides whether a callback is lost. Called with s.mu held.
func (s *Server) takeLostCallback() bool {
	switch {
	case s.faults.LoseCallbacks < 0:
		return true
	case s.faults.LoseCallbacks > 0:
		s.faults.LoseCallbacks--
		return true
	}
	return s.faults.CallbackLossRate > 0 && s.rng.Float64() < s.faults.CallbackLossRate
}

// pick returns the fault to inject on r, if any, counting it.
func (s *Server) pick(r *http.Request, op string) (HTTPFault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults.HTTP {
		f := &s.faults.HTTP[i]
		if f.Count > 0 && f.Hits >= f.Count {
			continue
		}
		if f.Path != "" && !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.Operation != "" && f.Operation != op {
			continue
		}
		if f.Rate > 0 && s.rng.Float64() >= f.Rate {
			continue
		}
		f.Hits++
		return *f, true
	}
	return HTTPFault{}, false
}

// withFaults injects HTTP faults in front of the Fusion resources.
func (s *Server) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		any := len(s.faults.HTTP) > 0
		s.mu.Unlock()
		if !any {
			next.ServeHTTP(w, r)
			return
		}
		op := ""
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/erpintegrations") {
			if b, err := readBody(r, maxUpload); err == nil {
				var v struct{ OperationName string }
				_ = json.Unmarshal(b, &v)
				op = v.OperationName
			}
		}
		f, ok := s.pick(r, op)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.log.Info("fault injected", "path", r.URL.Path, "status", f.Status, "timeout", f.Timeout, "after", f.After)
		if f.After {
			// The resource runs; its answer is thrown away.
			next.ServeHTTP(httptest.NewRecorder(), r)
		}
		if f.Timeout {
			hang := time.Duration(f.Hang)
			if hang <= 0 {
				hang = 30 * time.Second
			}
			t := time.NewTimer(hang)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
			case <-s.closing:
			}
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // drops the connection on any server
		}
		if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
			ra := time.Duration(f.RetryAfter)
			if ra <= 0 {
				ra = time.Second
			}
			w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
		}
		if f.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="fusionsim"`)
		}
		writeError(w, f.Status, fmt.Sprintf("Injected fault: %d %s.", f.Status, http.StatusText(f.Status)), "")
	})
}
