package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// TestMLLPProbes repeats, against a running `sinew up`, the probes of issue
// 9 on the MLLP listener: MSH-9 missing (item 4), MSH-13 sequence numbers
// moved by another client (item 6), large frames (item 10) and a flood of
// idle connections (item 9).
func TestMLLPProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 26 MiB and opens 60 connections")
	}
	a := newAddrs(t)
	const idle = 2 * time.Second
	s, _ := upWith(t, t.TempDir(), a, nil, []string{
		"SINEW_INGEST_MLLP_IDLE_TIMEOUT=" + idle.String(),
		"SINEW_INGEST_MLLP_MAX_CONNS=20", // 60 idle connections would hold every slot
		"SINEW_INGEST_MLLP_MAX_CONNS_PER_PEER=10",
		"SINEW_INGEST_MLLP_KNOWN_PEERS=127.0.0.2",
	})
	ctx := context.Background()
	js := s.js(t)
	dial := func(t *testing.T, from string) *mllp.Client {
		t.Helper()
		c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.mllp, LocalAddr: from, Match: hl7.AckMatches,
			AckTimeout: 60 * time.Second, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	send := func(t *testing.T, c *mllp.Client, msg []byte) *hl7.Message {
		t.Helper()
		reply, err := c.Send(ctx, msg)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(msg), err)
		}
		ack, err := hl7.Parse(reply)
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		return ack
	}

	t.Run("MSH-9 missing", func(t *testing.T) {
		ack := send(t, dial(t, ""), []byte("MSH|^~\\&|EPIC|PROBE4|SINEW|HQ|20261126|||NOTYPE|P|2.5\rPID|1\r"))
		if raw, _ := ack.Raw(hl7.MustPath("ERR-2")); ack.Get("MSA-1") != hl7.AR || string(raw) != "MSH^1^9" || ack.Get("ERR-3") != "101" {
			t.Errorf("answered %q", strings.ReplaceAll(string(ack.Bytes()), "\r", "\n"))
		}
		if n := subjectMsgs(t, js, "hl7.in.PROBE4.REJECTED.101"); n != 1 {
			t.Errorf("%d kept as rejected, want 1", n)
		}
		if n := subjectMsgs(t, js, "hl7.in.PROBE4.none.none"); n != 0 {
			t.Errorf("%d stored on none.none", n)
		}
	})

	t.Run("MSH-13 moved by another client", func(t *testing.T) {
		genuine, attacker := dial(t, ""), dial(t, "")
		m := func(ctrl, seq string) []byte {
			return []byte("MSH|^~\\&|EPIC|PROBE6|SINEW|HQ|20261126||ADT^A08|" + ctrl + "|P|2.5|" + seq + "\rPID|||P" + ctrl + "\r")
		}
		send(t, genuine, m("LEGIT4", "24"))
		for _, n := range []string{"25", "26", "27", "28", "29"} {
			send(t, attacker, m("EVIL"+n, n))
		}
		if ack := send(t, genuine, m("LEGIT5", "25")); ack.Get("MSA-1") != hl7.AA {
			t.Errorf("LEGIT5 answered %s", ack.Get("MSA-1"))
		}
		if !storedControlID(t, js, "hl7.in.PROBE6.ADT.A08", "LEGIT5") {
			t.Error("LEGIT5 acknowledged but not stored")
		}
	})

	t.Run("large frames", func(t *testing.T) {
		c := dial(t, "")
		big := func(ctrl string, n int) []byte {
			hdr := "MSH|^~\\&|EPIC|PROBE10|SINEW|HQ|20261126||ORU^R01|" + ctrl + "|P|2.5\rOBX|1|ED|PDF||^application^pdf^Base64^"
			return append(append([]byte(hdr), bytes.Repeat([]byte("QUJD"), (n-len(hdr))/4)...), '\r')
		}
		nine := big("BIG9", 9<<20)
		if ack := send(t, c, nine); ack.Get("MSA-1") != hl7.AA {
			t.Errorf("9 MiB answered %s %q", ack.Get("MSA-1"), ack.Get("ERR-8"))
		}
		if ack := send(t, c, big("BIG17", 17<<20)); ack.Get("MSA-1") != hl7.AR || !strings.Contains(ack.Get("ERR-8"), "too large") {
			t.Errorf("17 MiB answered %s %q", ack.Get("MSA-1"), ack.Get("ERR-8"))
		}
		ev := lastHL7(t, js, "hl7.in.PROBE10.ORU.R01")
		if ev.GetBodyObject() == "" {
			t.Fatal("9 MiB message stored without a body object")
		}
		obj, err := js.ObjectStore(ctx, "hl7_bodies")
		if err != nil {
			t.Fatal(err)
		}
		if body, err := obj.GetBytes(ctx, ev.GetBodyObject()); err != nil || !bytes.Equal(body, nine) {
			t.Errorf("9 MiB body read back: %d bytes, %v", len(body), err)
		}
		if rej := lastHL7(t, js, "hl7.in.PROBE10.REJECTED.104"); !rej.GetRawTruncated() || len(rej.GetRaw()) != 64<<10 {
			t.Errorf("17 MiB kept: truncated %v, %d bytes", rej.GetRawTruncated(), len(rej.GetRaw()))
		}
	})

	t.Run("idle flood", func(t *testing.T) {
		if nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", a.mllp); err != nil {
			t.Skipf("cannot connect from 127.0.0.2: %v", err)
		} else {
			nc.Close()
		}
		var flood []net.Conn
		for range 60 {
			if nc, err := net.Dial("tcp", a.mllp); err == nil {
				flood = append(flood, nc)
				t.Cleanup(func() { nc.Close() })
			}
		}
		for i, from := range []string{"127.0.0.2", "127.0.0.3"} {
			ctrl := "FLOOD" + string(rune('A'+i))
			ack := send(t, dial(t, from), []byte("MSH|^~\\&|EPIC|PROBE9|SINEW|HQ|20261126||ADT^A08|"+ctrl+"|P|2.5\rPID|1\r"))
			if ack.Get("MSA-1") != hl7.AA {
				t.Errorf("sender on %s answered %s during the flood", from, ack.Get("MSA-1"))
			}
		}
		start := time.Now()
		for _, nc := range flood {
			nc.SetReadDeadline(time.Now().Add(idle + 10*time.Second))
			if _, err := io.ReadAll(nc); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("an idle connection still open after %v (idle timeout %v)", time.Since(start), idle)
				}
			}
		}
	})
}

// subjectMsgs counts HL7_IN's messages on subject.
func subjectMsgs(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "HL7_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// lastHL7 is the last HL7_IN message on subject.
func lastHL7(t *testing.T, js jetstream.JetStream, subject string) *sinewv1.Hl7Received {
	t.Helper()
	st, err := js.Stream(context.Background(), "HL7_IN")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	ev := &sinewv1.Hl7Received{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// storedControlID reports whether HL7_IN holds a message on subject with
// control id ctrl (read with direct gets: no consumer is left behind).
func storedControlID(t *testing.T, js jetstream.JetStream, subject, ctrl string) bool {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "HL7_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil || m.Subject != subject {
			continue
		}
		ev := &sinewv1.Hl7Received{}
		if proto.Unmarshal(m.Data, ev) == nil && ev.GetControlId() == ctrl {
			return true
		}
	}
	return false
}
