package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/hl7"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// requireMLLPSend, set (CI sets it; .ci/run installs python3-hl7), turns a
// missing mllp_send into a failure instead of a skip.
const requireMLLPSend = "SINEW_REQUIRE_MLLP_SEND"

// TestThirdPartyMLLPSend drives `sinew up`'s MLLP listener with a client
// that is not ours: mllp_send of Debian's python3-hl7, several messages in
// one file (--loose: LF or CRLF terminators, each message starting with
// MSH|^~\&|). Every answer is AA (CA in enhanced mode) with MSA-2 the
// message's MSH-10, and every message is in HL7_IN.
func TestThirdPartyMLLPSend(t *testing.T) {
	bin, err := exec.LookPath("mllp_send")
	if err != nil {
		if os.Getenv(requireMLLPSend) != "" {
			t.Fatalf("mllp_send not found (%v); %s is set: install python3-hl7", err, requireMLLPSend)
		}
		t.Skipf("mllp_send not installed (apt-get install python3-hl7); set %s=1 to require it", requireMLLPSend)
	}
	files := []string{
		"ADT_A01__synthetic_cr.hl7",
		"ORU_R01__synthetic_lf_escapes.hl7", // enhanced mode: CA
		"RDS_O13__synthetic_rxd_ft1.hl7",
		"DFT_P03__synthetic_ft1.hl7",
	}
	type want struct{ code, controlID string }
	var wants []want
	var batch bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(syntheticDir, f))
		if err != nil {
			t.Fatal(err)
		}
		m, err := hl7.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		w := want{hl7.AA, m.ControlID()}
		if m.EnhancedMode() {
			w.code = hl7.CA
		}
		wants = append(wants, w)
		batch.Write(bytes.TrimRight(data, "\r\n"))
		batch.WriteString("\n")
	}
	file := filepath.Join(t.TempDir(), "messages.hl7")
	if err := os.WriteFile(file, batch.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	a := newAddrs(t)
	s, _ := up(t, t.TempDir(), a)
	host, port, err := net.SplitHostPort(a.mllp)
	if err != nil {
		t.Fatal(err)
	}
	// mllp_send has no timeout of its own: it waits for each answer forever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--loose", "--port", port, "--file", file, host)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mllp_send: %v\n%s%s", err, out, stderr.Bytes())
	}
	t.Logf("mllp_send printed %q", out)
	// It prints each answer as received: the MLLP frame (VT, segments ended
	// by CR, FS CR) and a newline.
	var acks [][]byte
	for _, frame := range bytes.Split(out, []byte{0x0b})[1:] {
		acks = append(acks, bytes.TrimRight(frame, "\x1c\r\n"))
	}
	if len(acks) != len(wants) {
		t.Fatalf("mllp_send printed %d answers for %d messages:\n%q", len(acks), len(wants), out)
	}
	for i, raw := range acks {
		ack, err := hl7.Parse(raw)
		if err != nil {
			t.Errorf("%s: answer does not parse: %v\n%q", files[i], err, raw)
			continue
		}
		if got := (want{ack.Get("MSA-1"), ack.Get("MSA-2")}); got != wants[i] || ack.Type() != "ACK" {
			t.Errorf("%s: %s MSA %s|%s, want %s|%s", files[i], ack.Type(), got.code, got.controlID, wants[i].code, wants[i].controlID)
		}
	}

	st, err := s.js(t).Stream(context.Background(), "HL7_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev := &sinewv1.Hl7Received{}
		if err := proto.Unmarshal(msg.Data, ev); err != nil {
			t.Fatal(err)
		}
		stored[ev.ControlId] = true
	}
	for _, w := range wants {
		if !stored[w.controlID] {
			t.Errorf("%s not in HL7_IN", w.controlID)
		}
	}
	if info.State.Msgs != uint64(len(wants)) {
		t.Errorf("HL7_IN holds %d messages, want %d", info.State.Msgs, len(wants))
	}
	s.stop(t)
}
