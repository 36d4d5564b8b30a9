package reason_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/reason"
)

var update = flag.Bool("update", false, "rewrite catalogue.go and the catalogue in docs/operations.md from reasons.json")

type jsonEntry struct {
	Constant  string `json:"constant"`
	Code      string `json:"code"`
	Text      string `json:"text"`
	Action    string `json:"action"`
	Permanent bool   `json:"permanent"`
}

func readCatalogue(t *testing.T) []jsonEntry {
	t.Helper()
	b, err := os.ReadFile("reasons.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var es []jsonEntry
	if err := dec.Decode(&es); err != nil {
		t.Fatalf("reasons.json: %v", err)
	}
	return es
}

// renderGo is the generator of catalogue.go (nats-server's errors.json →
// jetstream_errors_generated.go is the model).
func renderGo(es []jsonEntry) []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated from reasons.json by `go test -run TestCatalogueGenerated -update`; DO NOT EDIT.\n\npackage reason\n\nconst (\n")
	for _, e := range es {
		fmt.Fprintf(&b, "\t// %s %s\n\t%s Code = %q\n", e.Constant, e.Text, e.Constant, e.Code)
	}
	b.WriteString(")\n\nvar catalogue = [...]Entry{\n")
	for _, e := range es {
		fmt.Fprintf(&b, "\t{Code: %s, Constant: %q, Text: %q, Action: %q, Permanent: %v},\n", e.Constant, e.Constant, e.Text, e.Action, e.Permanent)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		panic(err)
	}
	return src
}

// renderDocs is the catalogue's table in docs/operations.md.
func renderDocs(es []jsonEntry) string {
	var b strings.Builder
	b.WriteString("| code | what happened | retried first | what to do |\n|---|---|---|---|\n")
	for _, e := range es {
		retried := "no"
		if !e.Permanent {
			retried = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", e.Code, e.Text, retried, strings.ReplaceAll(e.Action, "|", "\\|"))
	}
	return b.String()
}

const docsPath = "../../docs/operations.md"

var docsSection = regexp.MustCompile(`(?s)(<!-- reasons:begin[^>]*-->\n).*?(<!-- reasons:end -->)`)

func TestCatalogueGenerated(t *testing.T) {
	es := readCatalogue(t)
	want := renderGo(es)
	if *update {
		if err := os.WriteFile("catalogue.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("catalogue.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("catalogue.go differs from reasons.json: run go test -run TestCatalogueGenerated -update in pkg/reason")
	}
}

func TestDocsListTheCatalogue(t *testing.T) {
	es := readCatalogue(t)
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !docsSection.Match(doc) {
		t.Fatalf("%s has no <!-- reasons:begin --> ... <!-- reasons:end --> section", docsPath)
	}
	fixed := docsSection.ReplaceAllFunc(doc, func(m []byte) []byte {
		sub := docsSection.FindSubmatch(m)
		return append(append(append([]byte{}, sub[1]...), renderDocs(es)...), sub[2]...)
	})
	if *update {
		if err := os.WriteFile(docsPath, fixed, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(doc, fixed) {
		t.Fatalf("the reason catalogue in %s differs from reasons.json: run go test -run TestDocsListTheCatalogue -update in pkg/reason", docsPath)
	}
}

func TestCatalogueIsWellFormed(t *testing.T) {
	codeRe := regexp.MustCompile(`^SINEW-[A-Z0-9]+-[0-9]{3}$`)
	seen := map[string]bool{}
	for _, e := range readCatalogue(t) {
		switch {
		case !codeRe.MatchString(e.Code):
			t.Errorf("%s: code %q is not SINEW-<AREA>-<nnn>", e.Constant, e.Code)
		case seen[e.Code] || seen[e.Constant]:
			t.Errorf("%s %s: not unique", e.Constant, e.Code)
		case e.Text == "" || e.Action == "":
			t.Errorf("%s: needs a text and an action", e.Code)
		}
		seen[e.Code], seen[e.Constant] = true, true
	}
}

func TestErrorsCarryTheirCodeThroughWrapping(t *testing.T) {
	base := reason.New(reason.HL7RequiredFieldMissing, "RXD-2 empty")
	wrapped := fmt.Errorf("flow x: %w", base)
	for _, tc := range []struct {
		name      string
		err       error
		code      reason.Code
		permanent bool
		text      string
	}{
		{"new", base, reason.HL7RequiredFieldMissing, true, "RXD-2 empty"},
		{"wrapped", wrapped, reason.HL7RequiredFieldMissing, true, "flow x: RXD-2 empty"},
		{"wrap", reason.Wrap(reason.BusRetriesExhausted, fmt.Errorf("timeout")), reason.BusRetriesExhausted, false, "timeout"},
		{"plain", fmt.Errorf("plain"), "", false, "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reason.Of(tc.err); got != tc.code {
				t.Errorf("Of = %q, want %q", got, tc.code)
			}
			var p interface{ Permanent() bool }
			if got := errors.As(tc.err, &p) && p.Permanent(); got != tc.permanent {
				t.Errorf("permanent = %v, want %v", got, tc.permanent)
			}
			if tc.err.Error() != tc.text {
				t.Errorf("text %q, want %q", tc.err.Error(), tc.text)
			}
		})
	}
	if reason.Wrap(reason.BusPermanent, nil) != nil {
		t.Error("Wrap(nil) must be nil")
	}
}

func TestHL7CodesMapTable0357(t *testing.T) {
	for in, want := range map[int]reason.Code{101: reason.HL7RequiredFieldMissing, 103: reason.HL7TableValueNotFound, 207: reason.HL7ApplicationError, 999: reason.HL7ApplicationError} {
		if got := reason.HL7(in); got != want {
			t.Errorf("HL7(%d) = %s, want %s", in, got, want)
		}
	}
}
