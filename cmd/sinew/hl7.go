package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

func hl7Verbs() []verb {
	charsets := func(fs *flag.FlagSet) *hl7.Options {
		o := &hl7.Options{}
		fs.StringVar(&o.Charset, "charset", "", "decode text in this charset whatever MSH-18 says")
		fs.StringVar(&o.FallbackCharset, "fallback-charset", "", "charset for undeclared non-UTF-8 text (default windows-1252)")
		return o
	}
	return []verb{
		{name: "hl7 parse", args: "[FILE...]", summary: "one JSON object per message (type, event, control id, charset, warnings)", setup: func(fs *flag.FlagSet) runFunc {
			opts := charsets(fs)
			_ = fs.Bool("json", true, "JSON lines (the only format)")
			return func(_ context.Context, e *env, pos []string) error { return hl7Parse(pos, *opts, e.stdout) }
		}},
		{name: "hl7 get", args: "FILE PATH...", summary: "decoded values of fields (PID-5-1, PID-3(1)-4-2, OBX(2)-5)", setup: func(fs *flag.FlagSet) runFunc {
			opts := charsets(fs)
			return func(_ context.Context, e *env, pos []string) error {
				if len(pos) < 2 {
					return errors.New("hl7 get: want a file and at least one path (sinew hl7 get FILE PATH [PATH]...)")
				}
				m, err := oneMessage(pos[0], *opts)
				if err != nil {
					return err
				}
				for _, p := range pos[1:] {
					path, err := hl7.ParsePath(p)
					if err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, m.Value(path))
				}
				return nil
			}
		}},
		{name: "hl7 ack", args: "FILE", summary: "the ACK Sinew would send for a message", setup: func(fs *flag.FlagSet) runFunc {
			opts := charsets(fs)
			code := fs.String("code", "", "MSA-1 (AA, AE, AR, CA, CE, CR); default AA, or CA in enhanced mode")
			text := fs.String("text", "", "error text for a person")
			return func(_ context.Context, e *env, pos []string) error {
				if len(pos) != 1 {
					return fmt.Errorf("hl7 ack: usage: sinew hl7 ack [--code C] FILE")
				}
				return hl7Ack(pos[0], *opts, *code, *text, e.stdout)
			}
		}},
		{name: "hl7 send", args: "FILE...", summary: "send over MLLP; prints MSA-1 MSA-2 per message, exits 1 unless all are accepted", setup: func(fs *flag.FlagSet) runFunc {
			addr := fs.String("addr", "127.0.0.1:2575", "MLLP receiver host:port")
			useTLS := fs.Bool("tls", false, "use TLS")
			caFile := fs.String("ca", "", "CA certificate file to verify the receiver (implies --tls)")
			certFile := fs.String("cert", "", "client certificate file for mutual TLS (implies --tls)")
			keyFile := fs.String("key", "", "client key file for mutual TLS")
			timeout := fs.Duration("timeout", 30*time.Second, "wait this long for each ACK")
			return func(ctx context.Context, e *env, pos []string) error {
				var tlsCfg *tls.Config
				if *useTLS || *caFile != "" || *certFile != "" {
					var err error
					if tlsCfg, err = clientTLS(*caFile, *certFile, *keyFile); err != nil {
						return err
					}
				}
				return hl7Send(ctx, pos, *addr, tlsCfg, *timeout, e.stdout)
			}
		}},
	}
}

// hl7Ack prints the ACK (or NAK) Sinew would send for the message in file.
func hl7Ack(file string, opts hl7.Options, code, text string, stdout io.Writer) error {
	data, err := readInput(file)
	if err != nil {
		return err
	}
	o := hl7.AckOptions{Code: code, Text: text, Application: "SINEW"}
	m, perr := opts.Parse(data)
	var ack []byte
	if perr != nil {
		if o.Code == "" {
			o.Code = hl7.AR
		}
		o.Errors = []*hl7.ParseError{hl7.ErrorOf(perr)}
		ack = hl7.Nak(data, o)
	} else {
		if o.Code == "" {
			o.Code = hl7.AA
			if m.EnhancedMode() {
				o.Code = hl7.CA
			}
		}
		ack = m.Ack(o)
	}
	_, err = stdout.Write([]byte(strings.ReplaceAll(string(ack), "\r", "\n")))
	return err
}

// readInput reads a file, or stdin for "-" or no name.
func readInput(name string) ([]byte, error) {
	if name == "" || name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

func oneMessage(name string, opts hl7.Options) (*hl7.Message, error) {
	data, err := readInput(name)
	if err != nil {
		return nil, err
	}
	msgs, _, err := hl7.Split(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m, err := opts.Parse(msgs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// parsed is one message as `sinew hl7 parse` prints it.
type parsed struct {
	File         string   `json:"file"`
	Index        int      `json:"index"`
	Type         string   `json:"type,omitempty"`
	Event        string   `json:"event,omitempty"`
	Structure    string   `json:"structure,omitempty"`
	ControlID    string   `json:"control_id"`
	Version      string   `json:"version,omitempty"`
	Charset      string   `json:"charset,omitempty"`
	CharsetFrom  string   `json:"charset_source,omitempty"`
	Facility     string   `json:"sending_facility,omitempty"`
	Application  string   `json:"sending_application,omitempty"`
	SegmentCount int      `json:"segment_count"`
	Segments     []string `json:"segments,omitempty"`
	Warnings     []string `json:"warnings"`
	Error        string   `json:"error,omitempty"`
}

func hl7Parse(files []string, opts hl7.Options, stdout io.Writer) error {
	if len(files) == 0 {
		files = []string{"-"}
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := false
	for _, f := range files {
		data, err := readInput(f)
		if err != nil {
			return err
		}
		msgs, batch, err := hl7.Split(data)
		if err != nil {
			failed = true
			_ = enc.Encode(parsed{File: f, Error: err.Error(), Warnings: []string{}})
			continue
		}
		for i, raw := range msgs {
			p := parsed{File: f, Index: i, Warnings: []string{}}
			m, err := opts.Parse(raw)
			if err != nil {
				failed = true
				p.Error = err.Error()
				_ = enc.Encode(p)
				continue
			}
			p.Type, p.Event, p.Structure, p.ControlID, p.Version = m.Type(), m.Event(), m.Structure(), m.ControlID(), m.Version()
			p.Charset, p.CharsetFrom = m.Charset().Name, m.Charset().Source
			p.Facility, p.Application, p.SegmentCount = m.SendingFacility(), m.SendingApplication(), m.SegmentCount()
			for s := 0; s < m.SegmentCount(); s++ {
				p.Segments = append(p.Segments, m.SegmentName(s))
			}
			for _, w := range m.Warnings() {
				p.Warnings = append(p.Warnings, w.String())
			}
			if batch != nil {
				for _, w := range batch.Warnings {
					p.Warnings = append(p.Warnings, w.String())
				}
			}
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
	}
	if failed {
		return exitError(1)
	}
	return nil
}

func hl7Send(ctx context.Context, files []string, addr string, tlsCfg *tls.Config, timeout time.Duration, stdout io.Writer) error {
	if len(files) == 0 {
		files = []string{"-"}
	}
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, TLS: tlsCfg, AckTimeout: timeout, Match: hl7.AckMatches})
	if err != nil {
		return err
	}
	defer c.Close()
	notAccepted := 0
	for _, f := range files {
		data, err := readInput(f)
		if err != nil {
			return err
		}
		msgs, _, err := hl7.Split(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, raw := range msgs {
			msg := raw
			if m, err := hl7.Parse(raw); err == nil {
				msg = m.Encode() // the wire form: CR terminators
			}
			reply, err := c.Send(ctx, msg)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			ack, err := hl7.Parse(reply)
			if err != nil {
				return fmt.Errorf("%s: reply is not HL7: %w", f, err)
			}
			code := ack.Get("MSA-1")
			line := code + " " + ack.Get("MSA-2")
			if t := ack.Get("ERR-8"); t != "" {
				line += " " + t
			} else if t := ack.Get("MSA-3"); t != "" {
				line += " " + t
			}
			fmt.Fprintln(stdout, line)
			if code != hl7.AA && code != hl7.CA {
				notAccepted++
			}
		}
	}
	if notAccepted > 0 {
		return exitError(1)
	}
	return nil
}

func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
