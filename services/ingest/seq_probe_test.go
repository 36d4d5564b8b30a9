package ingest_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/tlstest"
	"github.com/sinewhq/sinew/services/ingest"
)

// seqMsg is an ADT^A08 from EPIC/STMARYS with MSH-13 = seq.
func seqMsg(ctrl, seq, body string) []byte {
	return []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|" + ctrl + "|P|2.5|" + seq + "\rPID|||" + body + "\r")
}

// storedControlIDs maps each control id kept in HL7_IN to its
// sequence_duplicate business key ("" when not flagged).
func storedControlIDs(t *testing.T, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range e.stored(t) {
		ev := decode(t, s.Data)
		out[ev.GetControlId()] = ev.GetEnvelope().BusinessKey("sequence_duplicate")
	}
	return out
}

// TestSequenceNumberAttackLosesNothing reproduces the probe of issue 9 item
// 6: a client advances a sender's expected MSH-13, then the genuine message
// with the number it now considers old arrives. It used to be answered AA
// and dropped. Now: on plain MLLP MSH-13 is ignored by default; when it is
// tracked for plain peers, the genuine message is stored and flagged; under
// mutual TLS the state belongs to the certificate, which the attacker lacks.
func TestSequenceNumberAttackLosesNothing(t *testing.T) {
	t.Run("plain MLLP, default: MSH-13 ignored", func(t *testing.T) {
		e := start(t, streams.DefaultOptions(), nil)
		attacker := e.dial(t)
		for i, ctrl := range []string{"LEGIT4", "EVIL25", "LEGIT5"} {
			c := e.client
			if strings.HasPrefix(ctrl, "EVIL") {
				c = attacker
			}
			reply, err := c.Send(context.Background(), seqMsg(ctrl, []string{"24", "25", "25"}[i], "P"+ctrl))
			if err != nil {
				t.Fatal(err)
			}
			ack, _ := hl7.Parse(reply)
			if ack.Get("MSA-1") != hl7.AA || ack.Get("MSA-4") != "" {
				t.Errorf("%s: MSA %s|%s", ctrl, ack.Get("MSA-1"), ack.Get("MSA-4"))
			}
		}
		got := storedControlIDs(t, e)
		if _, ok := got["LEGIT5"]; !ok || len(got) != 3 {
			t.Errorf("stored %v, want LEGIT4, EVIL25, LEGIT5", got)
		}
		// A header-only sync request is still answered positively (no
		// MSA-4: the numbers are not tracked), and nothing is stored.
		sync := e.send(t, []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||^|S0|P|2.5|0||AL|NE\r"))
		if sync.Get("MSA-1") != hl7.CA || sync.Get("MSA-4") != "" {
			t.Errorf("sync: %s|%s, want CA and no MSA-4", sync.Get("MSA-1"), sync.Get("MSA-4"))
		}
		if n := len(e.stored(t)); n != 3 {
			t.Errorf("%d stored after the sync, want 3", n)
		}
	})

	t.Run("plain MLLP, tracked: kept and flagged", func(t *testing.T) {
		e := start(t, streams.DefaultOptions(), func(c *ingest.Config) { c.HL7.SequenceNumbers = ingest.SeqAll })
		attacker := e.dial(t)
		if a := e.send(t, seqMsg("LEGIT4", "24", "PLEGIT4")); a.Get("MSA-4") != "25" {
			t.Fatalf("LEGIT4: MSA-4 %q", a.Get("MSA-4"))
		}
		reply, err := attacker.Send(context.Background(), seqMsg("EVIL25", "25", "PEVIL"))
		if err != nil {
			t.Fatal(err)
		}
		if a, _ := hl7.Parse(reply); a.Get("MSA-4") != "26" {
			t.Fatalf("EVIL25: MSA-4 %q", a.Get("MSA-4"))
		}
		legit := seqMsg("LEGIT5", "25", "PLEGIT5")
		a := e.send(t, legit)
		if a.Get("MSA-1") != hl7.AA || a.Get("MSA-4") != "26" {
			t.Errorf("LEGIT5: MSA %s|%s, want AA|26", a.Get("MSA-1"), a.Get("MSA-4"))
		}
		// Its resend is recognised and not stored twice.
		if a := e.send(t, legit); a.Get("MSA-1") != hl7.AA {
			t.Errorf("LEGIT5 resend: %s", a.Get("MSA-1"))
		}
		got := storedControlIDs(t, e)
		if flag, ok := got["LEGIT5"]; !ok || flag != "25" || len(got) != 3 {
			t.Errorf("stored %v, want LEGIT4, EVIL25 and LEGIT5 flagged sequence_duplicate=25", got)
		}
	})

	t.Run("mutual TLS: state per certificate", func(t *testing.T) {
		p := tlstest.New(t, "interconnect")
		e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
			c.MLLP.TLS = ingest.TLSConfig{CertFile: p.ServerCertFile, KeyFile: p.ServerKey, ClientCAFile: p.CAFile,
				Facilities: map[string][]string{"ST-MARYS-INTERCONNECT": {"STMARYS"}, "OTHER-VENDOR": {"STMARYS"}}}
		})
		_ = e.client.Close()
		dial := func(cn string) *mllp.Client {
			cfg := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Client(t, cn)}}
			c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: e.svc.MLLPAddr().String(), TLS: cfg,
				Match: hl7.AckMatches, AckTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		genuine, attacker := dial("ST-MARYS-INTERCONNECT"), dial("OTHER-VENDOR")
		send := func(c *mllp.Client, msg []byte) *hl7.Message {
			reply, err := c.Send(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			a, err := hl7.Parse(reply)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		send(genuine, seqMsg("LEGIT4", "24", "PLEGIT4"))
		for i, n := range []string{"25", "26", "27"} {
			send(attacker, seqMsg("EVIL"+n, n, "PEVIL"+string(rune('A'+i))))
		}
		a := send(genuine, seqMsg("LEGIT5", "25", "PLEGIT5"))
		if a.Get("MSA-1") != hl7.AA || a.Get("MSA-4") != "26" {
			t.Errorf("LEGIT5: MSA %s|%s, want AA|26", a.Get("MSA-1"), a.Get("MSA-4"))
		}
		got := storedControlIDs(t, e)
		if flag, ok := got["LEGIT5"]; !ok || flag != "" {
			t.Errorf("stored %v, want LEGIT5 unflagged", got)
		}
	})
}

func TestSequenceNumbersModeChecked(t *testing.T) {
	cfg := ingest.DefaultConfig()
	if cfg.HL7.SequenceNumbers != ingest.SeqMTLS {
		t.Errorf("default sequence_numbers %q, want %q", cfg.HL7.SequenceNumbers, ingest.SeqMTLS)
	}
	cfg.HL7.SequenceNumbers = "sometimes"
	if _, err := ingest.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "sequence_numbers") {
		t.Errorf("New with a bad mode: %v", err)
	}
}
