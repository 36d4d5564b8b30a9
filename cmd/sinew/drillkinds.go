package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// A drillKind is one kind of flow's part of the drill: which flows it
// drives (by pattern and settings, never by id, so a new flow of a known
// kind is drilled without code), the synthetic day it sends them while
// they are staged, and how it counts what arrived at their target.
type drillKind interface {
	// name says what the kind sends ("HL7 over MLLP").
	name() string
	// fits reports whether the kind drives f.
	fits(f *flows.Flow) bool
	// send sends the day's records for fs (the flows it fits), before
	// they are activated.
	send(ctx context.Context, r *drillRun, fs []*flows.Flow) error
	// progress is how many records reached their target so far and how
	// many should (0: the kind does not know in advance).
	progress(ctx context.Context, r *drillRun) (arrived, want int, err error)
	// tally counts f at its target after quiescence; row is `sinew flows`.
	tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error)
}

// drillFollowUp is a kind with a second part to its day, sent once the
// first has arrived: the target system's answer (Epic's changes to the
// providers a two-way flow created). It reports whether it sent any.
type drillFollowUp interface {
	followUp(ctx context.Context, r *drillRun) (bool, error)
}

// drillKinds are the kinds the drill knows, in the order their records
// are sent; the first that fits a flow drives it.
func drillKinds(msgs []drillMessage) []drillKind {
	return []drillKind{&hl7Kind{msgs: msgs}, &resoluteKind{}, &fusionSideKind{}, fhirReconKind{}, &fhirChartKind{records: chartedDay(msgs)}, scheduledKind{}}
}

// drillRun is one drill's simulators and settings, as the kinds see them.
type drillRun struct {
	seed       uint64
	day        time.Time
	n          int // the volume's HL7 messages
	dir        string
	inv        *flows.Inventory
	faults     drillFaults
	fusionAddr string
	mllpAddr   string
	// js is the drill's connection to sinew up (RECON, FHIR_IN).
	js jetstream.JetStream
	// epic is Epic's inbound interface (provider, supplier and refund
	// masters), run by the drill outside sinew up like Fusion.
	epic *epicsim.ProviderMaster
	// arrived and settled are each kind's last progress and when it
	// changed (quiesce).
	arrived map[string]int
	settled map[string]time.Time
}

// records is how many records a kind with a count per day sends: a
// fortieth of the HL7 messages, at least three.
func (r *drillRun) records() int { return max(3, r.n/40) }

func (r *drillRun) rng(salt uint64) *rand.Rand { return rand.New(rand.NewPCG(r.seed, salt)) }

func (r *drillRun) fusionGet(path string, dst any) error {
	resp, err := http.Get("http://" + r.fusionAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fusionsim %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(dst)
}

// fusionREST calls one of fusionsim's REST resources as a Fusion user
// would (signed in, validated, subject to no drill fault: the drill
// sets its changes before it sets the faults).
func (r *drillRun) fusionREST(method, path, body string, dst any) error {
	req, err := http.NewRequest(method, "http://"+r.fusionAddr+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	cfg := fusionsim.DefaultSimConfig()
	req.SetBasicAuth(cfg.Username, cfg.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("fusionsim %s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	if dst != nil {
		return json.Unmarshal(b, dst)
	}
	return nil
}

// --- HL7 feeds ---------------------------------------------------------

// hl7Kind is the real-time HL7 flows: epicsim's generated day over MLLP
// (every flow that names sending applications), counted in Fusion's
// staged inventory transactions.
type hl7Kind struct {
	msgs     []drillMessage
	rejected map[int]bool
	staged   []fusionsim.SimStagedRow
}

func (k *hl7Kind) name() string { return "HL7 v2 over MLLP" }

func (k *hl7Kind) fits(f *flows.Flow) bool {
	return f.HL7 != nil && strings.HasPrefix(f.Pattern, "realtime-hl7")
}

func (k *hl7Kind) send(ctx context.Context, r *drillRun, fs []*flows.Flow) error {
	// drill.lose withholds the last dispenses: counted as sent, never sent.
	withheld := map[int]bool{}
	for i := len(k.msgs) - 1; i >= 0 && len(withheld) < r.faults.lose; i-- {
		if k.msgs[i].rx != "" {
			withheld[i] = true
		}
	}
	var send []drillMessage
	var index []int
	for i, m := range k.msgs {
		if !withheld[i] {
			send, index = append(send, m), append(index, i)
		}
	}
	rej, err := sendDay(ctx, r.mllpAddr, send)
	if err != nil {
		return err
	}
	k.rejected = map[int]bool{}
	for i := range rej {
		k.rejected[index[i]] = true
	}
	return nil
}

func (k *hl7Kind) progress(ctx context.Context, r *drillRun) (int, int, error) {
	var cnt struct{ Rows int }
	err := r.fusionGet("/sim/inventory/count", &cnt)
	return cnt.Rows, 0, err
}

func (k *hl7Kind) tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error) {
	if k.staged == nil {
		if err := r.fusionGet("/sim/inventory", &k.staged); err != nil {
			return drillFlow{}, err
		}
	}
	return tallyHL7(r.inv, f, k.msgs, k.rejected, k.staged, row), nil
}

// --- Resolute journal files ---------------------------------------------

// resoluteKind is the batch flows that read Resolute journal files: one
// balanced file per flow into its first drop folder and, for a flow that
// also reads Clarity extracts (flows.yaml clarity), a second balanced
// batch as a Clarity CSV extract into its clarity drop folder; compared
// line by line (REFERENCE21) and by amount with the journals Fusion posted.
type resoluteKind struct {
	files map[string]*resoluteFile // by flow id
}

type resoluteFile struct {
	batchID string
	lines   map[string]bool // REFERENCE21: batch id ":" line id
	debits  money.Amount
	// clarity is the flow's Clarity extract's batch id ("" without one);
	// its lines and debits are counted in lines and debits.
	clarity string
}

func (k *resoluteKind) name() string { return "a Resolute journal file" }

func (k *resoluteKind) fits(f *flows.Flow) bool { return f.Resolute != nil && f.GL != nil }

// resoluteSize is journals × lines a journal per volume.
func resoluteSize(n int) (journals, lines int) {
	switch {
	case n >= 20000:
		return 40, 100
	case n >= 5000:
		return 20, 50
	}
	return 4, 25
}

func (k *resoluteKind) send(ctx context.Context, r *drillRun, fs []*flows.Flow) error {
	k.files = map[string]*resoluteFile{}
	for i, f := range fs {
		drop := "resolute"
		if len(f.Intake.Drops) > 0 {
			drop = f.Intake.Drops[0]
		}
		rf, raw, err := resoluteDay(r.seed, r.day, r.n, i)
		if err != nil {
			return err
		}
		dir := filepath.Join(r.dir, "drop", drop)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		final := filepath.Join(dir, rf.batchID+".txt")
		if err := os.WriteFile(final+".part", raw, 0o640); err != nil {
			return err
		}
		if err := os.Rename(final+".part", final); err != nil {
			return err
		}
		if f.Clarity != nil {
			if err := clarityExtract(r, f, drop, i, rf); err != nil {
				return err
			}
		}
		k.files[f.ID] = rf
	}
	return nil
}

// clarityExtract writes the seed's second batch for f as a Clarity CSV
// extract (f's column names) into its clarity drop folder (the one named
// clarity, else drop) and adds its lines and debits to rf.
func clarityExtract(r *drillRun, f *flows.Flow, drop string, i int, rf *resoluteFile) error {
	if slices.Contains(f.Intake.Drops, "clarity") {
		drop = "clarity"
	}
	cf, raw, err := resoluteDay(r.seed, r.day, r.n, 50+i)
	if err != nil {
		return err
	}
	lay := resolute.DefaultLayout()
	var csv bytes.Buffer
	if err := resolute.WriteClarityCSV(&csv, bytes.NewReader(raw), *f.Clarity, lay); err != nil {
		return fmt.Errorf("clarity extract: %w", err)
	}
	dir := filepath.Join(r.dir, "drop", drop)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	final := filepath.Join(dir, cf.batchID+".csv")
	if err := os.WriteFile(final+".part", csv.Bytes(), 0o640); err != nil {
		return err
	}
	if err := os.Rename(final+".part", final); err != nil {
		return err
	}
	rf.clarity = cf.batchID
	for l := range cf.lines {
		rf.lines[l] = true
	}
	rf.debits += cf.debits
	return nil
}

// resoluteDay is the seed's journal file number i: balanced, on the
// demo crosswalk's accounts (deploy/demo/coa.csv).
func resoluteDay(seed uint64, day time.Time, n, i int) (*resoluteFile, []byte, error) {
	journals, per := resoluteSize(n)
	rf := &resoluteFile{batchID: fmt.Sprintf("HB-%s-D%d%02d", day.Format("20060102"), seed%1000, i), lines: map[string]bool{}}
	var buf bytes.Buffer
	_, total, err := resolute.Generate(&buf, resolute.GenerateOptions{
		BatchID: rf.batchID, Kind: "HB", PostingDate: day, Journals: journals, LinesPerJournal: per,
		ServiceAreas: []string{"10", "20"}, CostCenters: []string{"6010", "6020"}, RevenueAccounts: []string{"40100", "40200"},
		ARAccount: "11010", Seed: seed*1000 + uint64(i),
	})
	if err != nil {
		return nil, nil, err
	}
	rf.debits = total
	for _, line := range strings.Split(buf.String(), "\n") {
		if id, ok := strings.CutPrefix(line, "D|"); ok {
			id, _, _ = strings.Cut(id, "|")
			rf.lines[rf.batchID+":"+id] = true
		}
	}
	return rf, buf.Bytes(), nil
}

func (k *resoluteKind) progress(ctx context.Context, r *drillRun) (int, int, error) {
	var batches []fusionsim.SimBatch
	if err := r.fusionGet("/sim/batches", &batches); err != nil {
		return 0, 0, err
	}
	got, want := 0, 0
	for _, rf := range k.files {
		want += len(rf.lines)
		got += len(postedLines(batches, rf))
	}
	return got, want, nil
}

// postedLines counts Fusion's posted journal lines of rf, by REFERENCE21.
func postedLines(batches []fusionsim.SimBatch, rf *resoluteFile) map[string]int {
	out := map[string]int{}
	for _, b := range batches {
		for _, j := range b.JournalHeaders {
			for _, l := range j.JournalLines {
				if rf.lines[l.Reference21] {
					out[l.Reference21]++
				}
			}
		}
	}
	return out
}

func (k *resoluteKind) tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error) {
	d := drillFlow{Flow: f.ID, Pattern: f.Pattern, DeadLetters: row.DeadLetters, Recon: row.Recon}
	rf := k.files[f.ID]
	if rf == nil {
		return d, nil
	}
	var batches []fusionsim.SimBatch
	if err := r.fusionGet("/sim/batches", &batches); err != nil {
		return d, err
	}
	var iface []fusionsim.SimInterfaceRow
	if err := r.fusionGet("/sim/interface", &iface); err != nil {
		return d, err
	}
	var loaded money.Amount
	seen := map[string]int{}
	for _, b := range batches {
		if b.UserJeSourceName != f.GL.Source {
			continue
		}
		for _, j := range b.JournalHeaders {
			for _, l := range j.JournalLines {
				d.FusionRows++
				if !rf.lines[l.Reference21] {
					continue
				}
				seen[l.Reference21]++
				if l.EnteredDebit != nil {
					loaded += *l.EnteredDebit
				}
			}
		}
	}
	rejected := map[string]bool{}
	for _, x := range iface {
		if rf.lines[x.Reference21] && x.Status != "NEW" && x.Status != "P" {
			rejected[x.Reference21] = true
		}
	}
	d.Messages, d.Sent, d.SentQty = 1, len(rf.lines), rf.debits.String()
	if rf.clarity != "" {
		d.Messages = 2
	}
	d.Loaded, d.LoadedQty, d.Rejected = len(seen), loaded.String(), len(rejected)
	for _, c := range seen {
		d.Duplicated += c - 1
	}
	missing := len(rf.lines) - len(seen)
	// A rejected or dead-lettered batch is held whole: accounted for.
	if d.DeadLetters == 0 && d.Rejected == 0 {
		d.Lost = missing
	}
	d.Checked, d.Verdict = true, "pass"
	d.Note = "one balanced Resolute file; lines compared by REFERENCE21, debits by amount with Fusion's posted journals"
	if rf.clarity != "" {
		d.Note = "one balanced Resolute file (" + rf.batchID + ") and a Clarity CSV extract (" + rf.clarity + "); lines compared by REFERENCE21, debits by amount with Fusion's posted journals"
	}
	switch {
	case d.Lost > 0 || d.Duplicated > 0:
		d.Verdict = "fail"
	case missing == 0 && loaded != rf.debits:
		d.Verdict, d.Variance = "fail", true
	}
	return d, nil
}

// --- Fusion-side changes -------------------------------------------------

// fusionChange is one Fusion resource whose changes a Fusion-to-Epic flow
// carries to Epic, keyed by the flow's source system: the day's changes
// (made through fusionsim's REST resources) and how Epic holds them.
type fusionChange struct {
	what string
	// make creates record i in Fusion (and what Epic must already hold
	// for it) and returns its business key and amount (0 when none).
	make func(r *drillRun, rnd *rand.Rand, i int) (key string, amount money.Amount, err error)
	// epic counts Epic's records by key, with the amount Epic holds.
	epic func(pm *epicsim.ProviderMaster) (map[string]int, map[string]money.Amount)
	// answer, for a two-way flow, is Epic users' changes to the records
	// that arrived, sent to Sinew: key → the value Fusion must come to hold.
	answer func(ctx context.Context, r *drillRun, keys []string) (map[string]string, error)
	// answered is Fusion's value of each record (key → value).
	answered func(r *drillRun) (map[string]string, error)
}

// fusionChanges are the Fusion sources the drill changes, by flow source.
var fusionChanges = map[string]fusionChange{
	"fusion.hcm": {what: "hires", make: makeHire, answer: editProviders, answered: fusionSpecialties, epic: func(pm *epicsim.ProviderMaster) (map[string]int, map[string]money.Amount) {
		out := map[string]int{}
		for _, p := range pm.Providers() {
			out[p.PersonNumber]++
		}
		return out, nil
	}},
	"fusion.procurement": {what: "new suppliers", make: makeSupplier, epic: func(pm *epicsim.ProviderMaster) (map[string]int, map[string]money.Amount) {
		out := map[string]int{}
		for _, s := range pm.Suppliers() {
			out[s.Number]++
		}
		return out, nil
	}},
	"fusion.ap": {what: "refund payments", make: makeRefundPayment, epic: func(pm *epicsim.ProviderMaster) (map[string]int, map[string]money.Amount) {
		out, amt := map[string]int{}, map[string]money.Amount{}
		for _, rf := range pm.Refunds() {
			for _, p := range rf.Payments {
				out[p.PaymentNumber]++
				amt[p.PaymentNumber] = p.Amount
			}
		}
		return out, amt
	}},
}

// drillNPI is a fictitious NPI with a valid check digit.
func drillNPI(seed uint64, i int) string {
	base := fmt.Sprintf("18%03d%04d", seed%1000, i%10000)
	for d := '0'; d <= '9'; d++ {
		if mfn.ValidNPI(base + string(d)) {
			return base + string(d)
		}
	}
	return base + "0"
}

func makeHire(r *drillRun, rnd *rand.Rand, i int) (string, money.Amount, error) {
	key := fmt.Sprintf("DR%03d%04d", r.seed%1000, i)
	names := []string{"ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"}
	depts := []string{"CARDIOLOGY", "ONCOLOGY", "SURGERY", "EMERGENCY"}
	body := fmt.Sprintf(`{"PersonNumber":%q,"names":[{"LastName":"DRILLWORKER","FirstName":%q,"LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":%q,
	  "assignments":[{"DepartmentName":%q,"JobCode":"PHYS","assignmentsDFF":[{"npi":%q,"specialty":"Cardiology","providerType":"MD"}]}]}]}`,
		key, names[rnd.IntN(len(names))], time.Now().UTC().Format(time.DateOnly), depts[rnd.IntN(len(depts))], drillNPI(r.seed, i))
	return key, 0, r.fusionREST(http.MethodPost, fusionsim.HCMPath+"/workers", body, nil)
}

// editProviders has Epic's credentialing staff change each hired
// provider's specialty, and sends Epic's provider updates (MFN^M02 from
// EPICPROV) to Sinew as Epic's outbound interface does.
func editProviders(ctx context.Context, r *drillRun, keys []string) (map[string]string, error) {
	specialties := []string{"Oncology", "Pediatrics", "Internal Medicine"}
	want := map[string]string{}
	bySER := map[string]string{}
	for _, p := range r.epic.Providers() {
		bySER[p.PersonNumber] = p.SER
	}
	var msgs []drillMessage
	for i, key := range keys {
		ser := bySER[key]
		if ser == "" {
			continue // not in Epic: the tally counts it lost
		}
		sp := specialties[i%len(specialties)]
		p, err := r.epic.EditProvider(ser, epicsim.Edit{Specialty: sp})
		if err != nil {
			return nil, err
		}
		<-r.epic.Updates() // the drill sends it, not epicsim
		raw, err := r.epic.UpdateMessage(p, time.Now().UTC(), fmt.Sprintf("DRPRV%03d%04d", r.seed%1000, i))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, drillMessage{raw: raw})
		want[key] = sp
	}
	rej, err := sendDay(ctx, r.mllpAddr, msgs)
	if err != nil {
		return nil, err
	}
	if len(rej) > 0 {
		return nil, fmt.Errorf("%d of Epic's provider updates not accepted", len(rej))
	}
	return want, nil
}

// fusionSpecialties is each Fusion worker's current specialty.
func fusionSpecialties(r *drillRun) (map[string]string, error) {
	var ws []fusionsim.Worker
	if err := r.fusionGet("/sim/workers", &ws); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, w := range ws {
		if n := len(w.Versions); n > 0 {
			out[w.PersonNumber] = w.Versions[n-1].Specialty
		}
	}
	return out, nil
}

func makeSupplier(r *drillRun, rnd *rand.Rand, i int) (string, money.Amount, error) {
	key := fmt.Sprintf("DS%03d%04d", r.seed%1000, i)
	body := fmt.Sprintf(`{"Supplier":"Drill Supply %s","SupplierNumber":%q,
	 "addresses":[{"AddressName":"MAIN","AddressLine1":"%d Market Street","City":"Springfield","PostalCode":"62701","CountryCode":"US"}],
	 "sites":[{"SupplierSite":"MAIN","ProcurementBU":"Main Hospital BU","SupplierAddressName":"MAIN"}]}`, key, key, 1+rnd.IntN(999))
	return key, 0, r.fusionREST(http.MethodPost, fusionsim.APIPath+"/suppliers", body, nil)
}

// makeRefundPayment records a patient refund in Resolute, then pays its
// invoice in Fusion: the payment's ISSUED status must reach the refund.
func makeRefundPayment(r *drillRun, rnd *rand.Rand, i int) (string, money.Amount, error) {
	ref := fmt.Sprintf("RF9%03d%04d", r.seed%1000, i)
	key := fmt.Sprintf("9%03d%04d", r.seed%1000, i)
	amt := money.Amount(1000 + rnd.IntN(50000))
	r.epic.AddRefund(epicsim.Refund{Reference: ref, Amount: amt, Currency: "USD"})
	body := fmt.Sprintf(`{"PaymentNumber":%q,"PaymentAmount":%q,"PaymentCurrency":"USD","PaymentDate":%q,"relatedInvoices":[{"InvoiceNumber":%q}]}`,
		key, amt.String(), r.day.Format(time.DateOnly), ref)
	return key, amt, r.fusionREST(http.MethodPost, fusionsim.APIPath+"/payablesPayments", body, nil)
}

// fusionSideKind is the flows fed by Fusion's changes: Fusion-to-Epic
// and two-way flows whose source is a Fusion resource the drill changes,
// counted in Epic's inbound interface by business key.
type fusionSideKind struct {
	sent map[string][]string                // flow id → keys, in order
	amts map[string]map[string]money.Amount // flow id → key → amount
	// answers are a two-way flow's Epic-side changes: flow id → key →
	// the value Fusion must hold.
	answers map[string]map[string]string
}

func (k *fusionSideKind) name() string { return "Fusion-side changes" }

func (k *fusionSideKind) fits(f *flows.Flow) bool {
	_, ok := fusionChanges[f.Source]
	return ok && strings.HasPrefix(f.Target, "epic.")
}

func (k *fusionSideKind) send(ctx context.Context, r *drillRun, fs []*flows.Flow) error {
	k.sent, k.amts = map[string][]string{}, map[string]map[string]money.Amount{}
	done := map[string]string{} // source → the flow that made its changes
	for j, f := range fs {
		if first, ok := done[f.Source]; ok {
			// Two flows of one source carry the same changes.
			k.sent[f.ID], k.amts[f.ID] = k.sent[first], k.amts[first]
			continue
		}
		done[f.Source] = f.ID
		c := fusionChanges[f.Source]
		rnd := r.rng(uint64(1000 + j))
		k.amts[f.ID] = map[string]money.Amount{}
		for i := range r.records() {
			key, amt, err := c.make(r, rnd, i)
			if err != nil {
				return fmt.Errorf("%s for %s: %w", c.what, f.ID, err)
			}
			k.sent[f.ID] = append(k.sent[f.ID], key)
			if amt != 0 {
				k.amts[f.ID][key] = amt
			}
		}
	}
	return nil
}

func (k *fusionSideKind) progress(ctx context.Context, r *drillRun) (int, int, error) {
	got, want := 0, 0
	for id, keys := range k.sent {
		f, ok := r.inv.Get(id)
		if !ok {
			continue
		}
		c := fusionChanges[f.Source]
		held, _ := c.epic(r.epic)
		want += len(keys)
		for _, key := range keys {
			if held[key] > 0 {
				got++
			}
		}
		if a := k.answers[id]; len(a) > 0 {
			now, err := c.answered(r)
			if err != nil {
				return 0, 0, err
			}
			want += len(a)
			for key, v := range a {
				if now[key] == v {
					got++
				}
			}
		}
	}
	return got, want, nil
}

// followUp sends the Epic side of the two-way flows once their Fusion
// side has arrived in Epic; false when no flow has one.
func (k *fusionSideKind) followUp(ctx context.Context, r *drillRun) (bool, error) {
	k.answers = map[string]map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(k.sent)) {
		f, ok := r.inv.Get(id)
		if !ok || f.Pattern != "two-way" || f.HL7 == nil {
			continue
		}
		c := fusionChanges[f.Source]
		if c.answer == nil {
			continue
		}
		a, err := c.answer(ctx, r, k.sent[id])
		if err != nil {
			return false, fmt.Errorf("%s: Epic-side changes: %w", id, err)
		}
		k.answers[id] = a
	}
	return len(k.answers) > 0, nil
}

func (k *fusionSideKind) tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error) {
	d := drillFlow{Flow: f.ID, Pattern: f.Pattern, DeadLetters: row.DeadLetters, Recon: row.Recon}
	keys := k.sent[f.ID]
	c := fusionChanges[f.Source]
	held, amts := c.epic(r.epic)
	d.Messages, d.Sent = len(keys), len(keys)
	var sentAmt, gotAmt money.Amount
	hasAmt := len(k.amts[f.ID]) > 0
	for _, key := range slices.Sorted(slices.Values(keys)) {
		sentAmt += k.amts[f.ID][key]
		switch n := held[key]; {
		case n == 0:
			d.Lost++
		default:
			d.Loaded++
			d.Duplicated += n - 1
			gotAmt += amts[key]
		}
	}
	for _, n := range held {
		d.FusionRows += n // here: Epic's records of the flow's kind
	}
	if a := k.answers[f.ID]; len(a) > 0 {
		now, err := c.answered(r)
		if err != nil {
			return d, err
		}
		d.EpicChanges = len(a)
		for key, v := range a {
			if now[key] == v {
				d.EpicChangesLoaded++
			} else {
				d.Lost++
			}
		}
	}
	d.Lost = max(0, d.Lost-d.DeadLetters)
	if hasAmt {
		d.SentQty, d.LoadedQty = sentAmt.String(), gotAmt.String()
	}
	d.Checked, d.Verdict = true, "pass"
	d.Note = fmt.Sprintf("%s made in Fusion while staged, compared by business key with what Epic holds (fusion_rows: Epic's records)", c.what)
	if d.EpicChanges > 0 {
		d.Note += "; then Epic's changes to them (epic_changes) compared with Fusion"
	}
	switch {
	case d.Lost > 0 || d.Duplicated > 0:
		d.Verdict = "fail"
	case d.DeadLetters == 0 && hasAmt && sentAmt != gotAmt:
		d.Verdict, d.Variance = "fail", true
	}
	return d, nil
}

// seedDuplicates posts n of Fusion's accepted staged rows once more,
// straight to fusionsim (drill.duplicate: the tally must catch it).
func seedDuplicates(r *drillRun, n int) error {
	var staged []fusionsim.SimStagedRow
	if err := r.fusionGet("/sim/inventory", &staged); err != nil {
		return err
	}
	for _, s := range staged {
		if n == 0 {
			return nil
		}
		if s.ProcessFlag != 1 || s.SourceCode == "" {
			continue
		}
		in := map[string]any{
			"OrganizationCode": s.OrganizationCode, "SubinventoryCode": s.SubinventoryCode, "ItemNumber": s.ItemNumber,
			"TransactionTypeName": s.TransactionTypeName, "TransactionQuantity": s.TransactionQuantity.String(),
			"TransactionUnitOfMeasure": s.TransactionUnitOfMeasure, "TransactionDate": s.TransactionDate.Format(time.RFC3339),
			"SourceCode": s.SourceCode, "SourceHeaderId": s.SourceHeaderID, "SourceLineId": s.SourceLineID,
			"TransactionReference": s.TransactionReference,
			"DFF":                  []map[string]string{{"program340B": yn(s.Program340B), "costCenter": s.CostCenter}},
		}
		b, _ := json.Marshal(in)
		if err := r.fusionREST(http.MethodPost, fusionsim.APIPath+"/inventoryStagedTransactions", string(b), nil); err != nil {
			return fmt.Errorf("drill.duplicate: %w", err)
		}
		n--
	}
	if n > 0 {
		return fmt.Errorf("drill.duplicate: not enough rows in Fusion to duplicate")
	}
	return nil
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}
