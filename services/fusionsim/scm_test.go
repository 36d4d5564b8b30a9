package fusionsim_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/services/fusionsim"
)

var day = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// issue is a valid Miscellaneous Issue of one RX-1001 from PHARM-MAIN.
func issue(line int64) fusion.InventoryTransaction {
	return fusion.InventoryTransaction{
		OrganizationName: "MAIN", SubinventoryCode: "PHARM-MAIN", ItemNumber: "RX-1001",
		TransactionTypeName: fusion.MiscellaneousIssue, TransactionQuantity: "-1", TransactionUnitOfMeasure: "EA",
		TransactionDate: day, SourceCode: "EPIC", SourceHeaderID: 700001, SourceLineID: line,
		TransactionReference: "RXD-1", Program340B: true, CostCenter: "6010",
	}
}

func errCode(err error) (int, string) {
	var fe *fusion.Error
	if !errors.As(err, &fe) {
		return 0, ""
	}
	if len(fe.Details) == 0 {
		return fe.StatusCode, ""
	}
	return fe.StatusCode, fe.Details[0].Code
}

func TestInventoryTransactionValidation(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mod  func(*fusion.InventoryTransaction)
		code string
	}{
		{"valid", func(*fusion.InventoryTransaction) {}, ""},
		{"org by name", func(x *fusion.InventoryTransaction) { x.OrganizationName = "Main Hospital" }, ""},
		{"uom by name", func(x *fusion.InventoryTransaction) { x.TransactionUnitOfMeasure = "Each" }, ""},
		{"receipt", func(x *fusion.InventoryTransaction) {
			x.TransactionTypeName, x.TransactionQuantity = fusion.MiscellaneousReceipt, "2.5"
		}, ""},
		{"implant with lot and serial", func(x *fusion.InventoryTransaction) {
			x.ItemNumber, x.SubinventoryCode, x.LotNumber, x.SerialNumber = "IMP-3001", "OR-CORE", "LOT-77", "SN-0001"
		}, ""},
		{"organization", func(x *fusion.InventoryTransaction) { x.OrganizationName = "NOPE" }, fusionsim.CodeInvalidOrganization},
		{"subinventory", func(x *fusion.InventoryTransaction) { x.SubinventoryCode = "STORES" }, fusionsim.CodeInvalidSubinventory},
		{"item", func(x *fusion.InventoryTransaction) { x.ItemNumber = "RX-9999" }, fusionsim.CodeInvalidItem},
		{"uom", func(x *fusion.InventoryTransaction) { x.TransactionUnitOfMeasure = "BX" }, fusionsim.CodeInvalidUOM},
		{"unknown uom", func(x *fusion.InventoryTransaction) { x.TransactionUnitOfMeasure = "KG" }, fusionsim.CodeInvalidUOM},
		{"zero", func(x *fusion.InventoryTransaction) { x.TransactionQuantity = "0.00" }, fusionsim.CodeInvalidQuantity},
		{"sign", func(x *fusion.InventoryTransaction) { x.TransactionQuantity = "1" }, fusionsim.CodeInvalidQuantity},
		{"type", func(x *fusion.InventoryTransaction) { x.TransactionTypeName = "Teleport" }, fusionsim.CodeInvalidTxnType},
		{"lot", func(x *fusion.InventoryTransaction) { x.ItemNumber = "IMP-3002" }, fusionsim.CodeLotRequired},
		{"serial", func(x *fusion.InventoryTransaction) {
			x.ItemNumber, x.LotNumber = "IMP-3001", "LOT-1"
		}, fusionsim.CodeSerialRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := issue(int64(len(e.sim.InventoryRows()) + 1))
			tc.mod(&x)
			st, err := e.c.CreateInventoryTransaction(ctx, x)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if st.TransactionInterfaceID == 0 || st.ProcessFlag != fusion.ProcessFlagPending || !st.TransactionQuantity.Equal(x.TransactionQuantity) ||
					st.LotNumber != x.LotNumber || st.SerialNumber != x.SerialNumber || !st.Program340B || st.CostCenter != "6010" ||
					!st.TransactionDate.Equal(day) || st.SourceLineID != x.SourceLineID {
					t.Fatalf("%+v", st)
				}
				return
			}
			status, code := errCode(err)
			if status != 400 || code != tc.code || fusion.IsTemporary(err) {
				t.Fatalf("err %v: status %d code %q, want 400 %s", err, status, code, tc.code)
			}
		})
	}
	// Rejected rows never enter the interface.
	for _, r := range e.sim.InventoryRows() {
		if r.ProcessFlag != fusion.ProcessFlagPending {
			t.Fatalf("rejected row stored: %+v", r)
		}
	}
}

func TestInterface408LeavesRow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.sim.SetFaults(fusionsim.Faults{Interface408: 2}); err != nil {
		t.Fatal(err)
	}
	bad := issue(1)
	bad.ItemNumber = "RX-9999"
	_, err := e.c.CreateInventoryTransaction(ctx, bad)
	if st, _ := errCode(err); st != 408 || !fusion.IsTemporary(err) {
		t.Fatalf("want 408: %v", err)
	}
	rows, err := e.c.FindInventoryTransactions(ctx, "EPIC", 700001, 1)
	if err != nil || len(rows) != 1 {
		t.Fatalf("%v %+v", err, rows)
	}
	if r := rows[0]; r.ProcessFlag != fusion.ProcessFlagError || r.ErrorCode != fusionsim.CodeInvalidItem || !strings.Contains(r.ErrorExplanation, "ItemNumber") {
		t.Fatalf("%+v", r)
	}
	// A valid row under the fault is processed; the caller just cannot know.
	_, err = e.c.CreateInventoryTransaction(ctx, issue(2))
	if st, _ := errCode(err); st != 408 {
		t.Fatalf("want 408: %v", err)
	}
	rows, err = e.c.FindInventoryTransactions(ctx, "EPIC", 700001, 2)
	if err != nil || len(rows) != 1 || rows[0].ProcessFlag != fusion.ProcessFlagPending || !rows[0].Program340B {
		t.Fatalf("%v %+v", err, rows)
	}
	oh, _ := e.c.OnhandQuantities(ctx, "MAIN", "RX-1001")
	if q := onhandIn(oh, "PHARM-MAIN"); q != "999" {
		t.Fatalf("on-hand %s", q)
	}
	// The fault is spent: the next one answers normally.
	if _, err := e.c.CreateInventoryTransaction(ctx, issue(3)); err != nil {
		t.Fatal(err)
	}
	// Nothing found for a line never posted.
	if rows, err := e.c.FindInventoryTransactions(ctx, "EPIC", 700001, 99); err != nil || len(rows) != 0 {
		t.Fatalf("%v %+v", err, rows)
	}
}

func onhandIn(oh []fusion.Onhand, sub string) fusion.Decimal {
	for _, o := range oh {
		if o.Subinventory == sub {
			return o.Quantity
		}
	}
	return ""
}

func TestDuplicatePostCreatesSecondRow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for range 2 {
		if _, err := e.c.CreateInventoryTransaction(ctx, issue(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.c.CreateInventoryTransaction(ctx, issue(2)); err != nil {
		t.Fatal(err)
	}
	rows, err := e.c.FindInventoryTransactions(ctx, "EPIC", 700001, 1)
	if err != nil || len(rows) != 2 || rows[0].TransactionInterfaceID >= rows[1].TransactionInterfaceID {
		t.Fatalf("%v %+v", err, rows)
	}
	var dups []fusionsim.SimSourceLine
	getJSON(t, e.hs.URL+"/sim/inventory/duplicates", &dups)
	if len(dups) != 1 || dups[0].SourceLineID != 1 || dups[0].Rows != 2 || dups[0].Processed != 2 {
		t.Fatalf("%+v", dups)
	}
	if lines := e.sim.InventoryLines(); len(lines) != 2 || lines[1].Rows != 1 {
		t.Fatalf("%+v", lines)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestOnhandAfterIssues(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i, q := range []fusion.Decimal{"-2", "-0.5", "-0.25"} {
		x := issue(int64(i + 1))
		x.ItemNumber, x.SubinventoryCode, x.TransactionUnitOfMeasure, x.TransactionQuantity = "LAB-4002", "LAB-CORE", "ML", q
		if _, err := e.c.CreateInventoryTransaction(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	oh, err := e.c.OnhandQuantities(ctx, "MAIN", "LAB-4002")
	if err != nil || len(oh) != 4 {
		t.Fatalf("%v %+v", err, oh)
	}
	if q := onhandIn(oh, "LAB-CORE"); q != "997.25" {
		t.Fatalf("LAB-CORE %s", q)
	}
	if q := onhandIn(oh, "PHARM-ED"); q != "1000" || oh[0].UOM != "ML" {
		t.Fatalf("%+v", oh)
	}
	all, err := e.c.OnhandQuantities(ctx, "MAIN", "")
	if err != nil || len(all) != 40 {
		t.Fatalf("%v %d", err, len(all))
	}
}

func TestUpsertItem(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	it := fusion.Item{ItemNumber: "RX-1005", OrganizationCode: "MAIN", Description: "Vancomycin 1 g vial", PrimaryUOMCode: "EA", ItemClass: "Pharmacy", Program340B: fusion.Bool(true)}
	got, err := e.c.UpsertItem(ctx, it)
	if err != nil || got.ItemStatus != "Active" || !fusion.IsTrue(got.Program340B) || got.PrimaryUOMCode != "EA" {
		t.Fatalf("%v %+v", err, got)
	}
	it.Description, it.LotControlled = "Vancomycin 1 g vial (new)", fusion.Bool(true)
	if _, err := e.c.UpsertItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	found, err := e.c.FindItem(ctx, "MAIN", "RX-1005")
	if err != nil || found == nil || found.Description != it.Description || !fusion.IsTrue(found.LotControlled) || !fusion.IsTrue(found.Program340B) {
		t.Fatalf("%v %+v", err, found)
	}
	if n := len(e.sim.Items()); n != 11 {
		t.Fatalf("%d items", n)
	}
	if missing, err := e.c.FindItem(ctx, "MAIN", "NOPE"); err != nil || missing != nil {
		t.Fatalf("%v %+v", err, missing)
	}
	imp, err := e.c.FindItem(ctx, "MAIN", "IMP-3001")
	if err != nil || !fusion.IsTrue(imp.LotControlled) || !fusion.IsTrue(imp.SerialControlled) || imp.Description != "Hip stem, cemented, size 4" {
		t.Fatalf("%v %+v", err, imp)
	}
	// Without Upsert-Mode a second create is a 400.
	body := `{"ItemNumber":"RX-1005","OrganizationCode":"MAIN","PrimaryUOMCode":"EA"}`
	resp := post(t, e.hs.URL+fusion.APIPath+"/itemsV2", "application/json", body, nil)
	if resp.StatusCode != 400 || !strings.Contains(readAll(resp), fusionsim.CodeItemExists) {
		t.Fatalf("%s", resp.Status)
	}
	// A bad UOM is a permanent error.
	it.ItemNumber, it.PrimaryUOMCode = "RX-1006", "KG"
	if _, err := e.c.UpsertItem(ctx, it); err == nil || fusion.IsTemporary(err) {
		t.Fatalf("bad uom: %v", err)
	}
}

func post(t *testing.T, url, ct, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.SetBasicAuth("sinew", "sinew")
	req.Header.Set("Content-Type", ct)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSupplierWithSites(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	acme, err := e.c.FindSupplier(ctx, "9001")
	if err != nil || acme == nil || acme.Name != "Acme Medical Supply" || len(acme.Sites) != 1 || acme.Sites[0].ProcurementBU != "Main Hospital BU" {
		t.Fatalf("%v %+v", err, acme)
	}
	s := fusion.Supplier{Name: "Beacon Diagnostics", SupplierNumber: "9002", Sites: []fusion.SupplierSite{
		{Site: "BEACON-MAIN", ProcurementBU: "Main Hospital BU", AddressLine1: "1 Lab Rd", City: "Springfield", PostalCode: "62702", Country: "US"},
		{Site: "BEACON-LAB", ProcurementBU: "Main Hospital BU", AddressLine1: "2 Lab Rd", City: "Springfield", PostalCode: "62703", Country: "US"},
	}}
	got, err := e.c.CreateSupplier(ctx, s)
	if err != nil || got.SupplierID == 0 || got.Status != "ACTIVE" || len(got.Sites) != 2 {
		t.Fatalf("%v %+v", err, got)
	}
	found, err := e.c.FindSupplier(ctx, "9002")
	if err != nil || found == nil || found.SupplierID != got.SupplierID || found.Sites[1].PostalCode != "62703" || found.Sites[0].AddressLine1 != "1 Lab Rd" {
		t.Fatalf("%v %+v", err, found)
	}
	if _, err := e.c.CreateSupplier(ctx, s); err == nil {
		t.Fatal("duplicate supplier accepted")
	} else if st, code := errCode(err); st != 400 || code != fusionsim.CodeSupplierExists {
		t.Fatalf("%v", err)
	}
	bad := fusion.Supplier{Name: "No BU", Sites: []fusion.SupplierSite{{Site: "X"}}}
	if _, err := e.c.CreateSupplier(ctx, bad); err == nil {
		t.Fatal("site without BU accepted")
	}
	if none, err := e.c.FindSupplier(ctx, "0000"); err != nil || none != nil {
		t.Fatalf("%v %+v", err, none)
	}
	if n := len(e.sim.Suppliers()); n != 2 {
		t.Fatalf("%d suppliers", n)
	}
}

func TestBatchAllOrNone(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	bad := issue(2)
	bad.ItemNumber = "SUP-1002"
	parts := []fusion.BatchPart{
		{ID: "p1", Path: fusion.InventoryStagedTransactionsPath, Operation: fusion.OpCreate, Payload: issue(1)},
		{ID: "p2", Path: fusion.InventoryStagedTransactionsPath, Operation: fusion.OpCreate, Payload: bad},
		{ID: "p3", Path: fusion.ItemsPath, Operation: fusion.OpUpsert, Payload: fusion.Item{ItemNumber: "RX-2000", OrganizationCode: "MAIN", PrimaryUOMCode: "EA"}},
	}
	res, err := e.c.Batch(ctx, parts)
	if err == nil || fusion.IsTemporary(err) {
		t.Fatalf("want a permanent error: %v", err)
	}
	if len(res) != 1 || res[0].ID != "p2" || res[0].Error == nil || res[0].Error.Details[0].Code != fusionsim.CodeInvalidItem {
		t.Fatalf("%+v", res)
	}
	if n := len(e.sim.InventoryRows()); n != 0 {
		t.Fatalf("%d rows after a failed batch", n)
	}
	if it, _ := e.c.FindItem(ctx, "MAIN", "RX-2000"); it != nil {
		t.Fatal("item of a failed batch exists")
	}
	oh, _ := e.c.OnhandQuantities(ctx, "MAIN", "RX-1001")
	if q := onhandIn(oh, "PHARM-MAIN"); q != "1000" {
		t.Fatalf("on-hand %s after a failed batch", q)
	}
	// Fixed, the same batch takes effect as a whole.
	parts[1].Payload = issue(2)
	res, err = e.c.Batch(ctx, parts)
	if err != nil || len(res) != 3 || res[0].Status != 201 || res[2].Status != 201 {
		t.Fatalf("%v %+v", err, res)
	}
	var row struct {
		TransactionInterfaceID int64 `json:"TransactionInterfaceId"`
		SourceLineID           int64 `json:"SourceLineId"`
	}
	if err := json.Unmarshal(res[1].Payload, &row); err != nil || row.SourceLineID != 2 || row.TransactionInterfaceID == 0 {
		t.Fatalf("%v %s", err, res[1].Payload)
	}
	if n := len(e.sim.InventoryRows()); n != 2 {
		t.Fatalf("%d rows", n)
	}
	// The batch examples (corpus and synthetic): TestBatchExampleBothPartsFail.
	// Wrong media type.
	if resp := post(t, e.hs.URL+fusion.APIPath+"/", "application/json", `{"parts":[]}`, nil); resp.StatusCode != 415 {
		t.Fatalf("%s", resp.Status)
	}
}

func TestInventoryPagingAndFilters(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i := range 7 {
		x := issue(int64(i + 1))
		x.TransactionDate = day.Add(time.Duration(i) * 6 * time.Hour) // 4 on the 15th from 10:00, 3 on the 16th
		if i == 6 {
			x.SourceCode = "OTHER"
		}
		if _, err := e.c.CreateInventoryTransaction(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	small, err := fusion.New(fusion.Config{BaseURL: e.hs.URL, Username: "sinew", Password: "sinew", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    fusion.InventoryQuery
		want int
	}{
		{fusion.InventoryQuery{}, 7},
		{fusion.InventoryQuery{SourceCode: "EPIC"}, 6},
		{fusion.InventoryQuery{Organization: "Main Hospital", SourceCode: "EPIC"}, 6},
		{fusion.InventoryQuery{Organization: "OTHER"}, 0},
		{fusion.InventoryQuery{SourceCode: "EPIC", From: day, To: day.Add(24 * time.Hour)}, 4},
		{fusion.InventoryQuery{From: day.Add(24 * time.Hour)}, 3},
	} {
		got, err := small.InventoryTransactions(ctx, tc.q)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %v, %d rows, want %d", tc.q, err, len(got), tc.want)
		}
	}
	var p struct {
		Items   []json.RawMessage `json:"items"`
		HasMore bool              `json:"hasMore"`
	}
	req, _ := http.NewRequest("GET", e.hs.URL+fusion.APIPath+"/inventoryStagedTransactions?limit=3&offset=3&q=SourceCode=EPIC", nil)
	req.SetBasicAuth("sinew", "sinew")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&p) != nil || len(p.Items) != 3 || p.HasMore {
		t.Fatalf("%+v", p)
	}
	req, _ = http.NewRequest("GET", e.hs.URL+fusion.APIPath+"/inventoryStagedTransactions?q=Nope=1", nil)
	req.SetBasicAuth("sinew", "sinew")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 400 {
		t.Fatalf("unknown q attribute: %s", resp2.Status)
	}
}

func TestSCMFaults(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	err := e.sim.SetFaults(fusionsim.Faults{HTTP: []fusionsim.HTTPFault{
		{Status: 503, Path: "/inventoryStagedTransactions", Method: "POST", Count: 1, RetryAfter: fusionsim.Duration(3 * time.Second)},
		{Status: 429, Path: "/inventoryOnhandBalances", Count: 1},
		{Status: 500, After: true, Path: "/itemsV2", Method: "POST", Count: 1},
		{Status: 502, Path: "/oauth2", Count: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.c.CreateInventoryTransaction(ctx, issue(1))
	var fe *fusion.Error
	if !errors.As(err, &fe) || fe.StatusCode != 503 || fe.RetryAfter != 3*time.Second || !fusion.IsTemporary(err) {
		t.Fatalf("%v", err)
	}
	if n := len(e.sim.InventoryRows()); n != 0 {
		t.Fatalf("503 before the effect stored %d rows", n)
	}
	if _, err := e.c.OnhandQuantities(ctx, "MAIN", "RX-1001"); !fusion.IsTemporary(err) {
		t.Fatalf("%v", err)
	}
	if _, err := e.c.UpsertItem(ctx, fusion.Item{ItemNumber: "RX-3000", OrganizationCode: "MAIN", PrimaryUOMCode: "EA"}); !fusion.IsTemporary(err) {
		t.Fatalf("%v", err)
	}
	if it, err := e.c.FindItem(ctx, "MAIN", "RX-3000"); err != nil || it == nil {
		t.Fatalf("after-fault item missing: %v", err)
	}
	resp := post(t, e.hs.URL+fusionsim.TokenPath, "application/x-www-form-urlencoded", "grant_type=x", nil)
	if resp.StatusCode != 502 {
		t.Fatalf("token fault: %s", resp.Status)
	}
	// A timeout fault drops the connection: the client sees a temporary
	// error. (A POST: Go's transport itself retries an idempotent GET whose
	// reused connection drops before answering.)
	if err := e.sim.SetFaults(fusionsim.Faults{HTTP: []fusionsim.HTTPFault{{Timeout: true, Hang: fusionsim.Duration(50 * time.Millisecond), Path: "/suppliers", Method: "POST", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CreateSupplier(ctx, fusion.Supplier{Name: "Timeout Test Supply", SupplierNumber: "9900"}); err == nil || !fusion.IsTemporary(err) {
		t.Fatalf("%v", err)
	}
}

func pemPublic(t *testing.T, k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestOAuthJWTAssertion(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *fusionsim.SimConfig) {
		c.OAuth.PublicKeysPEM = pemPublic(t, key)
		c.OAuth.TokenTTL = time.Second
		c.OAuth.Audience = "https://identity.oraclecloud.com/"
	})
	ctx := context.Background()
	jc := fusion.JWTConfig{TokenURL: e.hs.URL + fusionsim.TokenPath, ClientID: "sinew-client", Subject: "SINEW_INTEGRATION",
		Scope: "urn:opc:resource:consumer::all", Audience: "https://identity.oraclecloud.com/", Key: key, KeyID: "sinew"}

	t.Run("happy path", func(t *testing.T) {
		c, err := fusion.New(fusion.Config{BaseURL: e.hs.URL, TokenSource: fusion.JWTAssertion(jc)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateInventoryTransaction(ctx, issue(1)); err != nil {
			t.Fatal(err)
		}
		// The token lives 1s, under the leeway: the source renews it and the
		// call still goes through after the first token expired.
		time.Sleep(1100 * time.Millisecond)
		if _, err := c.FindSupplier(ctx, "9001"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		bad := jc
		bad.Key = other
		c, _ := fusion.New(fusion.Config{BaseURL: e.hs.URL, TokenSource: fusion.JWTAssertion(bad)})
		_, err := c.FindSupplier(ctx, "9001")
		if st, _ := errCode(err); st != 400 || fusion.IsTemporary(err) || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("expired assertion", func(t *testing.T) {
		old := jc
		old.Now = func() time.Time { return time.Now().Add(-time.Hour) }
		_, err := fusion.JWTAssertion(old)(ctx)
		if st, _ := errCode(err); st != 400 || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		aud := jc
		aud.Audience = "https://elsewhere/"
		if _, err := fusion.JWTAssertion(aud)(ctx); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("expired token", func(t *testing.T) {
		// No leeway to hide expiry: use the token after its TTL directly.
		tok, err := fusion.JWTAssertion(jc)(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := fusion.New(fusion.Config{BaseURL: e.hs.URL, BearerToken: tok})
		if _, err := c.FindSupplier(ctx, "9001"); err != nil {
			t.Fatalf("fresh token refused: %v", err)
		}
		time.Sleep(1100 * time.Millisecond)
		_, err = c.FindSupplier(ctx, "9001")
		if st, _ := errCode(err); st != 401 {
			t.Fatalf("expired token: %v", err)
		}
	})
	t.Run("wrong grant", func(t *testing.T) {
		resp := post(t, jc.TokenURL, "application/x-www-form-urlencoded", "grant_type=client_credentials", nil)
		if resp.StatusCode != 400 || !strings.Contains(readAll(resp), "unsupported_grant_type") {
			t.Fatalf("%s", resp.Status)
		}
	})
}

func TestSCMResetAndAdmin(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) { c.StartingOnhand = "50" })
	ctx := context.Background()
	st, err := e.c.CreateInventoryTransaction(ctx, issue(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.UpsertItem(ctx, fusion.Item{ItemNumber: "NEW-1", OrganizationCode: "MAIN", PrimaryUOMCode: "EA"}); err != nil {
		t.Fatal(err)
	}
	var oh []fusionsim.SimOnhand
	getJSON(t, e.hs.URL+"/sim/onhand", &oh)
	if len(oh) != 40 || oh[0].OnhandQuantity == "" {
		t.Fatalf("%+v", oh[:1])
	}
	var rows []fusionsim.SimStagedRow
	getJSON(t, e.hs.URL+"/sim/inventory", &rows)
	if len(rows) != 1 || rows[0].TransactionInterfaceID != st.TransactionInterfaceID || rows[0].OrganizationCode != "MAIN" {
		t.Fatalf("%+v", rows)
	}
	var items []fusion.Item
	getJSON(t, e.hs.URL+"/sim/items", &items)
	var sups []fusionsim.SimSupplier
	getJSON(t, e.hs.URL+"/sim/suppliers", &sups)
	if len(items) != 11 || len(sups) != 1 {
		t.Fatalf("%d items %d suppliers", len(items), len(sups))
	}
	e.sim.Reset()
	if len(e.sim.InventoryRows()) != 0 || len(e.sim.Items()) != 10 {
		t.Fatal("reset kept SCM state")
	}
	ohs, _ := e.c.OnhandQuantities(ctx, "MAIN", "RX-1001")
	if q := onhandIn(ohs, "PHARM-MAIN"); q != "50" {
		t.Fatalf("on-hand after reset %s", q)
	}
	st2, err := e.c.CreateInventoryTransaction(ctx, issue(1))
	if err != nil || st2.TransactionInterfaceID <= st.TransactionInterfaceID {
		t.Fatalf("ids must keep increasing: %v %d", err, st2.TransactionInterfaceID)
	}
}

func TestEmbeddedSCMMatchesDeploy(t *testing.T) {
	b, err := os.ReadFile("../../deploy/demo/fusion_scm.yaml")
	if err != nil {
		t.Skipf("%v", err)
	}
	if _, err := fusionsim.NewServer(fusionsim.SimConfig{SCMPath: "../../deploy/demo/fusion_scm.yaml"}); err != nil {
		t.Fatal(err)
	}
	if string(b) != fusionsim.DemoSCM() {
		t.Fatal("deploy/demo/fusion_scm.yaml and the built-in copy (scmdemo.go) differ")
	}
	if _, err := fusionsim.NewServer(fusionsim.SimConfig{SCMYAML: "items: [{number: X, organization: NOPE, uom: EA}]"}); err == nil {
		t.Fatal("bad master data accepted")
	}
}

// The client reads every answer to its end, so one connection serves a run
// of calls: an answer left unread makes the next call dial again.
func TestClientReusesConnections(t *testing.T) {
	sim, err := fusionsim.NewServer(fusionsim.DefaultSimConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	var conns atomic.Int32
	hs := httptest.NewUnstartedServer(sim.Handler())
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	hs.Start()
	t.Cleanup(hs.Close)
	c, err := fusion.New(fusion.Config{BaseURL: hs.URL, Username: "sinew", Password: "sinew", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range int64(10) {
		var parts []fusion.BatchPart // an answer of several buffers
		for j := range int64(50) {
			parts = append(parts, fusion.BatchPart{ID: fmt.Sprint("p", j), Path: fusion.InventoryStagedTransactionsPath, Operation: fusion.OpCreate, Payload: issue(i*50 + j + 1)})
		}
		if _, err := c.Batch(ctx, parts); err != nil {
			t.Fatal(err)
		}
		if _, err := c.FindItem(ctx, "MAIN", "RX-1001"); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential calls opened %d connections, want 1", n)
	}
}

func TestCreateInventoryTransactions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	bad := issue(2)
	bad.ItemNumber = "SUP-1002"
	st, failed, err := e.c.CreateInventoryTransactions(ctx, []fusion.InventoryTransaction{issue(1), bad, issue(3)})
	if err == nil || fusion.IsTemporary(err) || st != nil {
		t.Fatalf("want a permanent error and no statuses: %v %v", st, err)
	}
	if len(failed) != 1 || failed[0].ID != "p1" || failed[0].Error.Details[0].Code != fusionsim.CodeInvalidItem {
		t.Fatalf("failed parts %+v", failed)
	}
	st, failed, err = e.c.CreateInventoryTransactions(ctx, []fusion.InventoryTransaction{issue(1), issue(2), issue(3)})
	if err != nil || failed != nil || len(st) != 3 {
		t.Fatalf("%v %v %+v", err, failed, st)
	}
	rows := e.sim.InventoryRows()
	for i, s := range st {
		if s.TransactionInterfaceID == 0 || s.ProcessFlag == fusion.ProcessFlagError || s.TransactionInterfaceID != rows[i].TransactionInterfaceID {
			t.Errorf("part %d: %+v, row %+v", i, s, rows[i].StagedStatus)
		}
	}
}

// The DFF segments the simulator reads are named by pkg/fusion's codes.
func TestTxnDFFCodes(t *testing.T) {
	b, err := json.Marshal(fusionsim.TxnDFFIn{Program340B: "Y", CostCenter: "6010"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"` + fusion.DFF340BAttribute + `":"Y","` + fusion.DFFCostCenterAttribute + `":"6010"}`
	if string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}
