// Package tlstest makes a throwaway certificate authority for tests of TLS
// and mutual TLS: a CA, a server certificate for 127.0.0.1 and client
// certificates, in memory and as PEM files.
package tlstest

import (
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
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a test CA and the certificates it issued.
type PKI struct {
	CA     *x509.Certificate
	Pool   *x509.CertPool // holds CA
	CAFile string         // CA as PEM
	// Server is for 127.0.0.1 (CN sinew-ingest), also as PEM files.
	Server                    tls.Certificate
	ServerCertFile, ServerKey string

	dir    string
	key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// New makes a CA named name and its server certificate; files go to a
// directory removed when the test ends.
func New(tb testing.TB, name string) *PKI {
	tb.Helper()
	p := &PKI{dir: tb.TempDir(), key: newKey(tb)}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		tb.Fatal(err)
	}
	if p.CA, err = x509.ParseCertificate(der); err != nil {
		tb.Fatal(err)
	}
	p.Pool = x509.NewCertPool()
	p.Pool.AddCert(p.CA)
	p.serial.Store(1)
	p.CAFile = p.write(tb, "ca.pem", "CERTIFICATE", der)
	p.Server, p.ServerCertFile, p.ServerKey = p.issue(tb, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "sinew-ingest"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return p
}

// Client issues a client certificate with common name cn.
func (p *PKI) Client(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	c, _, _ := p.ClientFiles(tb, cn)
	return c
}

// ClientFiles issues a client certificate with common name cn and returns
// it with its PEM certificate and key files.
func (p *PKI) ClientFiles(tb testing.TB, cn string) (tls.Certificate, string, string) {
	tb.Helper()
	return p.issue(tb, "client-"+cn, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (p *PKI) issue(tb testing.TB, name string, tmpl *x509.Certificate) (tls.Certificate, string, string) {
	tb.Helper()
	key := newKey(tb)
	tmpl.SerialNumber = big.NewInt(p.serial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile := p.write(tb, name+".pem", "CERTIFICATE", der)
	keyFile := p.write(tb, name+"-key.pem", "EC PRIVATE KEY", kder)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile
}

func (p *PKI) write(tb testing.TB, name, typ string, der []byte) string {
	tb.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
