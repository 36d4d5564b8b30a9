package epicsim

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/supplierfile"
)

// TestSupplierFileOverSFTPAppliedOrRefusedWhole: a supplier file renamed
// into supplier-ref on the real SFTP server is applied to the supplier
// reference and answered AA in a result file; a bad file is refused whole
// (AR naming its line and field, none of its suppliers applied); an ae
// fault answers AE; every taken file moves to done/.
func TestSupplierFileOverSFTPAppliedOrRefusedWhole(t *testing.T) {
	dir := t.TempDir()
	pm := NewProviderMaster("STMARYS", false)
	cfg := SFTPConfig{Addr: "127.0.0.1:0", User: "epic", Password: "s3cret", Root: filepath.Join(dir, "root"),
		HostKeyFile: filepath.Join(dir, "host_key"), SupplierDir: "supplier-ref"}
	cfg.OnPut = func(d, name string) {
		if d == cfg.SupplierDir {
			pm.receiveSupplierFile(filepath.Join(cfg.Root, d), name, zerolog.Nop())
		}
	}
	srv, err := StartSFTP(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sc, err := ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{User: "epic", Auth: []ssh.AuthMethod{ssh.Password("s3cret")},
		HostKeyCallback: ssh.FixedHostKey(srv.PublicKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	cl, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	put := func(ctrl string, data []byte) supplierfile.Result {
		t.Helper()
		name := supplierfile.Name(ctrl)
		f, err := cl.Create(path.Join("supplier-ref", name+".part"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := cl.PosixRename(path.Join("supplier-ref", name+".part"), path.Join("supplier-ref", name)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(cfg.Root, "supplier-ref", supplierfile.ResultName(name)))
			if err == nil {
				r, err := supplierfile.ParseResult(b)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(cfg.Root, "supplier-ref", "done", name)); err != nil {
					t.Fatalf("the taken file is not in done/: %v", err)
				}
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("no result for %s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	good, err := supplierfile.Build(supplierfile.Header{ControlID: "SNW1", Created: time.Now(), Sender: "SINEW", Facility: "STMARYS"}, ';',
		mfn.Supplier{Number: "7700", Name: "Northwind Surgical", Active: true, Sites: []mfn.SupplierSite{{Site: "NW-HQ", City: "Portland"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := put("SNW1", good); r.Code != supplierfile.CodeAccepted || r.ControlID != "SNW1" {
		t.Fatalf("good file: %+v", r)
	}
	sups := pm.Suppliers()
	if len(sups) != 1 || sups[0].Number != "7700" || !sups[0].Active || sups[0].Sites[0].City != "Portland" {
		t.Fatalf("reference %+v", sups)
	}
	bad := "H|SUPREF|1|SNW2|20260302093000|SINEW|STMARYS\nS|7701|Contoso|A\nS|7702|Fabrikam|X\nZ|2|4\n"
	if r := put("SNW2", []byte(bad)); r.Code != supplierfile.CodeRejected || r.Line != 3 || r.Field != 3 || strings.Contains(r.Text, "Fabrikam") {
		t.Fatalf("bad file: %+v", r)
	}
	if n := len(pm.Suppliers()); n != 1 {
		t.Fatalf("a refused file applied suppliers: %d in the reference", n)
	}
	pm.SetFault(Fault{Mode: "ae", Count: 1, Text: "supplier table locked"})
	if r := put("SNW3", good); r.Code != supplierfile.CodeError || r.Text != "supplier table locked" {
		t.Fatalf("ae fault: %+v", r)
	}
	if c := pm.Counts(); c.Received != 3 || c.Applied != 1 || c.Rejected != 2 {
		t.Fatalf("counts %+v", c)
	}
}
