package ingest_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/tlstest"
	"github.com/sinewhq/sinew/services/ingest"
)

func TestMutualTLSAuthorisesSendingFacilities(t *testing.T) {
	p := tlstest.New(t, "interconnect")
	client := p.Client(t, "ST-MARYS-INTERCONNECT")
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
		c.MLLP.TLS = ingest.TLSConfig{CertFile: p.ServerCertFile, KeyFile: p.ServerKey, ClientCAFile: p.CAFile,
			Facilities: map[string][]string{"ST-MARYS-INTERCONNECT": {"STMARYS"}}}
	})
	_ = e.client.Close() // plain TCP: the handshake fails, nothing is answered
	dial := func(withCert bool) (*mllp.Client, error) {
		cfg := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
		if withCert {
			cfg.Certificates = []tls.Certificate{client}
		}
		c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: e.svc.MLLPAddr().String(), TLS: cfg,
			Match: hl7.AckMatches, AckTimeout: 3 * time.Second, Retries: -1})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		return c, nil
	}
	msg := func(facility string) []byte {
		return []byte("MSH|^~\\&|EPIC|" + facility + "|SINEW|HQ|20261126||ADT^A08|T-" + facility + "|P|2.5\rPID|1\r")
	}

	c, err := dial(true)
	if err != nil {
		t.Fatal(err)
	}
	for facility, want := range map[string]string{"STMARYS": hl7.AA, "OTHERHOSP": hl7.AR} {
		reply, err := c.Send(context.Background(), msg(facility))
		if err != nil {
			t.Fatalf("%s: %v", facility, err)
		}
		ack, _ := hl7.Parse(reply)
		if ack.Get("MSA-1") != want {
			t.Errorf("%s answered %s, want %s", facility, ack.Get("MSA-1"), want)
		}
		if want == hl7.AR {
			if raw, _ := ack.Raw(hl7.MustPath("ERR-2")); string(raw) != "MSH^1^4^^1" {
				t.Errorf("ERR-2 %q, want MSH^1^4^^1", raw)
			}
		}
	}
	if noCert, err := dial(false); err == nil {
		if _, err := noCert.Send(context.Background(), msg("STMARYS")); err == nil {
			t.Error("a client without a certificate was answered")
		}
	}
}
