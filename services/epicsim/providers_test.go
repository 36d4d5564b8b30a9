package epicsim

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/mllp"
)

func startInbound(t *testing.T, pm *ProviderMaster) string {
	t.Helper()
	srv, err := mllp.NewServer(mllp.ServerConfig{}, pm)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func hire(ctrl string) []byte {
	raw, err := mfn.Build(mfn.Message{
		Header: mfn.Header{SendingApp: "SINEW", ReceivingApp: ProviderApp, ControlID: ctrl, Time: time.Now()},
		Event:  mfn.Add,
		Provider: mfn.Provider{PersonNumber: "P1", Family: "DOE", Given: "JANE", Active: true, ProviderType: "MD",
			NPI: "1234567893", Specialty: "Cardiology"},
	})
	if err != nil {
		panic(err)
	}
	return raw
}

func TestProviderMasterAnswers(t *testing.T) {
	pm := NewProviderMaster("STMARYS", true)
	addr := startInbound(t, pm)
	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 500 * time.Millisecond, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(ctrl string) (string, string, error) {
		reply, err := c.Send(ctx, hire(ctrl))
		if err != nil {
			return "", "", err
		}
		a, err := hl7.Parse(reply)
		if err != nil {
			t.Fatal(err)
		}
		return a.Get("MSA-1"), a.Get("ERR-8"), nil
	}
	if code, _, err := send("C1"); err != nil || code != hl7.AA {
		t.Fatalf("hire: %s %v", code, err)
	}
	// A resend (same control id) is a duplicate and does not add a provider.
	if code, _, err := send("C1"); err != nil || code != hl7.AA {
		t.Fatalf("resend: %s %v", code, err)
	}
	if ps := pm.Providers(); len(ps) != 1 || ps[0].SER == "" || ps[0].PersonNumber != "P1" {
		t.Fatalf("master: %+v", ps)
	}
	if n := pm.Counts(); n.Duplicates != 1 || n.Applied != 2 {
		t.Fatalf("counts: %+v", n)
	}
	pm.SetFault(Fault{Mode: "ae", Count: 1})
	if code, text, err := send("C2"); err != nil || code != hl7.AE || !strings.Contains(text, "locked") {
		t.Fatalf("ae: %s %q %v", code, text, err)
	}
	if code, _, _ := send("C3"); code != hl7.AA {
		t.Fatal("fault did not end after its count")
	}
	pm.SetFault(Fault{Mode: "drop", Count: 1})
	if _, _, err := send("C4"); !errors.Is(err, mllp.ErrAckTimeout) {
		t.Fatalf("drop: %v", err)
	}
	// A bad record is rejected naming the field.
	bad := strings.Replace(string(hire("C5")), "|||A\r", "|||Q\r", 1)
	c2, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	reply, err := c2.Send(ctx, []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := hl7.Parse(reply)
	if a.Get("MSA-1") != hl7.AR || a.Get("ERR-2-1") != "STF" || a.Get("ERR-2-3") != "7" {
		t.Fatalf("bad record: %q", strings.ReplaceAll(string(reply), "\r", "\n"))
	}
	// Echo: every change Sinew made is sent back as Epic's own update.
	select {
	case p := <-pm.Updates():
		if p.PersonNumber != "P1" {
			t.Fatalf("echo: %+v", p)
		}
	default:
		t.Fatal("no provider update queued")
	}
	// An Epic-side edit queues an update too.
	ser := pm.Providers()[0].SER
	if _, err := pm.EditProvider(ser, Edit{Specialty: "Oncology"}); err != nil {
		t.Fatal(err)
	}
	var last mfn.Provider
	for len(pm.Updates()) > 0 {
		last = <-pm.Updates()
	}
	if last.Specialty != "Oncology" {
		t.Fatalf("edit: %+v", last)
	}
	raw, err := pm.UpdateMessage(last, time.Now(), "PRV1")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := mfn.Parse(raw); err != nil || m.Provider.SER != ser || m.Header.SendingApp != ProviderApp {
		t.Fatalf("update message: %+v %v", m, err)
	}
}
