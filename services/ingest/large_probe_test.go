package ingest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
)

// bigMsg is an ORU^R01 of about n bytes: an OBX-5 of base64-like text, as
// an embedded PDF would be.
func bigMsg(ctrl string, n int) []byte {
	hdr := "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ORU^R01|" + ctrl + "|P|2.5\rPID|||MRN-SECRET\rOBX|1|ED|PDF||^application^pdf^Base64^"
	body := bytes.Repeat([]byte("QUJD"), (n-len(hdr))/4)
	return append(append([]byte(hdr), body...), '\r')
}

// TestLargeMessagesAreAlwaysAnswered reproduces issue 9 item 10 with real
// sockets: a 9 MiB message (over NATS's 8 MiB max payload, under the 16 MiB
// frame limit) was answered AE "please resend" forever and never kept; a
// 17 MiB frame got no answer at all. Now the 9 MiB one is stored whole (in
// the hl7_bodies object store, referenced from HL7_IN) and answered AA; the
// 17 MiB one is read to its end and answered AR, its first 64 KiB kept as
// rejected; the connection goes on.
func TestLargeMessagesAreAlwaysAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 26 MiB")
	}
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) { c.HL7.CommitTimeout = 20 * time.Second })
	c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: e.svc.MLLPAddr().String(), Match: hl7.AckMatches,
		AckTimeout: 60 * time.Second, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	send := func(msg []byte) *hl7.Message {
		t.Helper()
		reply, err := c.Send(context.Background(), msg)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(msg), err)
		}
		a, err := hl7.Parse(reply)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	nine := bigMsg("BIG9", 9<<20)
	if a := send(nine); a.Get("MSA-1") != hl7.AA {
		t.Fatalf("9 MiB: %s %s", a.Get("MSA-1"), a.Get("ERR-8"))
	}
	if a := send(nine); a.Get("MSA-1") != hl7.AA { // a resend: same answer, stored once
		t.Fatalf("9 MiB resend: %s %s", a.Get("MSA-1"), a.Get("ERR-8"))
	}
	seventeen := bigMsg("BIG17", 17<<20)
	a := send(seventeen)
	if a.Get("MSA-1") != hl7.AR || a.Get("ERR-3") != "104" || !strings.Contains(a.Get("ERR-8"), "too large") {
		t.Errorf("17 MiB: %s ERR-3 %s ERR-8 %q", a.Get("MSA-1"), a.Get("ERR-3"), a.Get("ERR-8"))
	}
	if a := send([]byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|SMALL1|P|2.5\rPID|1\r")); a.Get("MSA-1") != hl7.AA {
		t.Errorf("after the large frames: %s", a.Get("MSA-1"))
	}

	stored := e.stored(t)
	if len(stored) != 3 {
		t.Fatalf("%d kept, want 3 (9 MiB, 17 MiB rejected, small)", len(stored))
	}
	obj, err := e.js.ObjectStore(context.Background(), streams.ObjHL7Bodies)
	if err != nil {
		t.Fatal(err)
	}
	ev := decode(t, stored[0].Data)
	if ev.GetControlId() != "BIG9" || len(ev.GetRaw()) != 0 || ev.GetBodyObject() == "" || ev.GetRawSize() != int64(len(nine)) {
		t.Fatalf("9 MiB kept as %s: raw %d bytes, object %q, size %d", ev.GetControlId(), len(ev.GetRaw()), ev.GetBodyObject(), ev.GetRawSize())
	}
	body, err := obj.GetBytes(context.Background(), ev.GetBodyObject())
	if err != nil || !bytes.Equal(body, nine) {
		t.Fatalf("9 MiB body read back: %d bytes, %v", len(body), err)
	}
	rej := decode(t, stored[1].Data)
	if stored[1].Subject != "hl7.in.STMARYS.REJECTED.104" || stored[1].Header.Get(ingest.RejectedHeader) == "" {
		t.Errorf("17 MiB kept on %s, header %q", stored[1].Subject, stored[1].Header.Get(ingest.RejectedHeader))
	}
	if !rej.GetRawTruncated() || rej.GetRawSize() != int64(len(seventeen)) || len(rej.GetRaw()) != 64<<10 ||
		!bytes.Equal(rej.GetRaw(), seventeen[:64<<10]) || rej.GetControlId() != "BIG17" {
		t.Errorf("17 MiB kept: truncated %v size %d raw %d bytes, control id %q", rej.GetRawTruncated(), rej.GetRawSize(), len(rej.GetRaw()), rej.GetControlId())
	}
	if strings.Contains(stored[1].Header.Get(ingest.RejectedHeader), "SECRET") {
		t.Error("the rejection reason quotes the message")
	}
}
