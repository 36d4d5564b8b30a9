package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestReceiptAuditSubjectIsDocumented: every HL7 receipt is audited on the
// subject docs/hl7.md names (the default flow's, whatever MSH-3 says).
func TestReceiptAuditSubjectIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hl7.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("One record per receipt[^`]*`(audit\\.[^`]+)`").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/hl7.md names no audit subject for receipts")
	}
	want := string(m[1])
	e := start(t, streams.DefaultOptions(), nil)
	for _, app := range []string{"WILLOW", "OPTIME"} {
		msg := "MSH|^~\\&|" + app + "|STMARYS|SINEW|HQ|20261126||ADT^A01|AUD-" + app + "|P|2.5.1\rPID|||1\r"
		if a := e.send(t, []byte(msg)); a.Get("MSA-1") != hl7.AA {
			t.Fatalf("%s: %s", app, a.Get("MSA-1"))
		}
	}
	var receipts int
	err = audit.Read(context.Background(), e.js, "", func(en audit.Entry) error {
		for _, ev := range en.Events {
			if ev.Action == "receive" {
				receipts++
				if en.Subject != want {
					t.Errorf("receipt audited on %s; docs/hl7.md says %s", en.Subject, want)
				}
			}
		}
		return nil
	})
	if err != nil || receipts != 2 {
		t.Fatalf("%d receipts, %v", receipts, err)
	}
}
