package fusionsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// bigID is a SourceHeaderId above 2^53: a float64 reader would round it.
const bigID int64 = 9_007_199_254_740_993

// walkJSON calls f for every key of every object in v, with its value.
func walkJSON(v any, f func(key string, val any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			f(k, val)
			walkJSON(val, f)
		}
	case []any:
		for _, val := range x {
			walkJSON(val, f)
		}
	}
}

// TestAdminJSONNamingAndIDs: every /sim/ inspection endpoint names its
// attributes as Fusion's REST resources do (UpperCamelCase, "Id", the same
// name on every endpoint) and sends every id as a string, so 63-bit ids
// survive a float64 JSON reader.
func TestAdminJSONNamingAndIDs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.importZip(t, "a.zip", rowsZip(t, balanced(gA, "B", "J", "2.00", "a")...), strconv.Itoa(gA))
	e.wait(t, id)
	tx := issue(1)
	tx.SourceHeaderID = bigID
	if _, err := e.c.CreateInventoryTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CreateSupplier(ctx, fusion.Supplier{Name: "Beta Labs", SupplierNumber: "9002", Status: "ACTIVE",
		Sites: []fusion.SupplierSite{{Site: "BETA-MAIN", ProcurementBU: "Main Hospital BU", Country: "US"}}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/sim/imports", "/sim/interface", "/sim/batches", "/sim/requests", "/sim/requests/" + id,
		"/sim/callbacks", "/sim/inventory", "/sim/inventory/count", "/sim/inventory/lines", "/sim/inventory/duplicates",
		"/sim/items", "/sim/suppliers", "/sim/onhand"} {
		resp, err := http.Get(e.hs.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", p, resp.Status)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		walkJSON(v, func(k string, val any) {
			if r := []rune(k); !unicode.IsUpper(r[0]) || strings.HasSuffix(k, "ID") || strings.HasSuffix(k, "IDs") {
				t.Errorf("%s: attribute %q is not named as Fusion names attributes (UpperCamelCase, Id)", p, k)
			}
			switch {
			case strings.HasSuffix(k, "Id"):
				if _, ok := val.(string); !ok {
					t.Errorf("%s: %s = %v (%T), want a string", p, k, val, val)
				}
			case strings.HasSuffix(k, "Ids"):
				for _, x := range val.([]any) {
					if _, ok := x.(string); !ok {
						t.Errorf("%s: %s holds %v (%T), want strings", p, k, x, x)
					}
				}
			}
		})
	}

	var rows []fusionsim.SimStagedRow
	getJSON(t, e.hs.URL+"/sim/inventory", &rows)
	var lines []fusionsim.SimSourceLine
	getJSON(t, e.hs.URL+"/sim/inventory/lines", &lines)
	if len(rows) != 1 || rows[0].SourceHeaderID != bigID || len(lines) != 1 || lines[0].SourceHeaderID != bigID ||
		lines[0].TransactionInterfaceIDs[0] != strconv.FormatInt(rows[0].TransactionInterfaceID, 10) {
		t.Fatalf("rows %+v lines %+v", rows, lines)
	}
	var imports []fusionsim.SimGroupImport
	getJSON(t, e.hs.URL+"/sim/imports", &imports)
	if len(imports) != 1 || imports[0].GroupID != gA || imports[0].Posted != 1 {
		t.Fatalf("imports %+v", imports)
	}
}

// jsonNames are the JSON attribute names of struct type t and of the
// structs it holds (slices of structs included).
func jsonNames(t reflect.Type, out map[string]bool) {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "time" {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
		jsonNames(f.Type, out)
	}
}

// TestAdminDocsListEveryAttribute: docs/fusionsim.md names every attribute
// each /sim/ inspection endpoint sends, so the page cannot drift from the
// code again.
func TestAdminDocsListEveryAttribute(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "fusionsim.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `GET "); ok {
			ep, cell, _ := strings.Cut(rest, "` |")
			rows[ep] = cell
		}
	}
	for ep, v := range map[string]any{
		"/sim/imports": fusionsim.SimGroupImport{}, "/sim/interface": fusionsim.SimInterfaceRow{},
		"/sim/batches": fusionsim.SimBatch{}, "/sim/requests": fusionsim.SimRequest{},
		"/sim/requests/{id}": fusionsim.SimRequestFiles{}, "/sim/callbacks": fusionsim.SimCallback{},
		"/sim/inventory": fusionsim.SimStagedRow{}, "/sim/inventory/lines": fusionsim.SimSourceLine{},
		"/sim/items": fusion.Item{}, "/sim/suppliers": fusionsim.SimSupplier{}, "/sim/onhand": fusionsim.SimOnhand{},
	} {
		cell, ok := rows[ep]
		if !ok {
			t.Errorf("docs/fusionsim.md has no row for GET %s", ep)
			continue
		}
		names := map[string]bool{}
		jsonNames(reflect.TypeOf(v), names)
		for n := range names {
			if !strings.Contains(cell, "`"+n+"`") {
				t.Errorf("docs/fusionsim.md, GET %s: attribute `%s` is not listed", ep, n)
			}
		}
	}
}
