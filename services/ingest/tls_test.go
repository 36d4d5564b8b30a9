package ingest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
)

// pki is a throwaway CA with a server and a client certificate as files.
type pki struct {
	dir                string
	ca                 *x509.Certificate
	caKey              *ecdsa.PrivateKey
	caFile             string
	serverCert, srvKey string
	client             tls.Certificate
	clientCN           string
}

func newPKI(t *testing.T, clientCN string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), clientCN: clientCN}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert, p.srvKey = p.issue(t, "sinew-ingest", x509.ExtKeyUsageServerAuth, "server")
	crt, keyFile := p.issue(t, clientCN, x509.ExtKeyUsageClientAuth, "client")
	p.client, err = tls.LoadX509KeyPair(crt, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pki) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, name string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

func TestMutualTLSAuthorisesSendingFacilities(t *testing.T) {
	p := newPKI(t, "ST-MARYS-INTERCONNECT")
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
		c.MLLP.TLS = ingest.TLSConfig{CertFile: p.serverCert, KeyFile: p.srvKey, ClientCAFile: p.caFile,
			Facilities: map[string][]string{"ST-MARYS-INTERCONNECT": {"STMARYS"}}}
	})
	_ = e.client.Close() // plain TCP: the handshake fails, nothing is answered
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	dial := func(withCert bool) (*mllp.Client, error) {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if withCert {
			cfg.Certificates = []tls.Certificate{p.client}
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
