package epicsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/refund"
)

// InboundConfig is Epic's inbound interface for what Sinew sends back to
// Epic (the staff / practitioner master, MFN^M02), with the simulator's
// own HTTP endpoint to read Epic's records and inject faults (/sim/).
type InboundConfig struct {
	// Addr is the MLLP address Epic listens on for Sinew's messages;
	// empty turns the inbound interface off.
	Addr string `yaml:"addr"`
	// SimAddr serves /sim/providers, /sim/inbound and /sim/faults, and,
	// while the FHIR server is on, /sim/faults/fhir, /sim/fhir/chart and
	// /sim/fhir/practitioners. It runs without Addr too (then with the
	// FHIR routes only): the cutover drill charts its own day so.
	SimAddr string `yaml:"sim_addr"`
	// Facility is MSH-4 of the provider updates Epic sends (default
	// Traffic.Facility).
	Facility string `yaml:"facility"`
	// Echo makes Epic send its own provider update (MFN^M02 MUP) for every
	// change Sinew made, as Epic's outbound provider interface does:
	// Sinew must recognise its own write and not send it back.
	Echo bool `yaml:"echo"`
	// EditEvery, with traffic, is how often an Epic user changes a
	// provider's specialty (Epic's side of the day); 0 never.
	EditEvery time.Duration `yaml:"edit_every"`
	// Refunds is how many patient refunds Resolute holds awaiting
	// payment from the start (pkg/refund Synthetic 1..Refunds), for
	// fusionsim's day to pay; sinew up sets 500 with traffic.
	Refunds int `yaml:"refunds"`
}

// ProviderApp is MSH-3 of the provider updates Epic sends to Sinew.
const ProviderApp = "EPICPROV"

// Fault is what the inbound interface does with the next messages.
type Fault struct {
	// Mode: "" or "ack" (normal), "ae" (application error), "ar"
	// (application reject), "delay" (apply, then answer after Delay),
	// "drop" (read, apply nothing, answer nothing).
	Mode  string        `json:"mode"`
	Delay time.Duration `json:"delay,omitempty"`
	// Count is how many messages the fault applies to; 0 means until
	// cleared.
	Count int `json:"count,omitempty"`
	// Text is ERR-8 of an AE or AR (a default names the fault).
	Text string `json:"text,omitempty"`
}

// Inbound counts what the interface received.
type Inbound struct {
	Received   int `json:"received"`   // messages read
	Applied    int `json:"applied"`    // records applied
	Duplicates int `json:"duplicates"` // a control id seen before (a resend)
	Rejected   int `json:"rejected"`   // answered AE / AR
	Dropped    int `json:"dropped"`    // read and not answered
}

// ProviderMaster is Epic's provider (SER) and user (EMP) master as the
// simulator keeps it: what Sinew's MFN^M02 messages made of it and what
// Epic-side users changed.
type ProviderMaster struct {
	mu       sync.Mutex
	bySER    map[string]*mfn.Provider
	nextID   int
	seen     map[string]bool // MFE-2 control ids applied
	counts   Inbound
	faults   Fault
	facility string
	updates  chan mfn.Provider // Epic's own provider updates to send
	echo     bool
	// suppliers is Willow's and Beaker's supplier reference, by number.
	suppliers map[string]mfn.Supplier
	// refunds is Resolute's patient refunds, by reference, with the
	// payment statuses received for each.
	refunds map[string]*Refund
}

// Refund is one Resolute patient refund and its payment status history.
type Refund struct {
	Reference string           `json:"reference"`
	Amount    money.Amount     `json:"amount"`
	Currency  string           `json:"currency"`
	Payments  []refund.Payment `json:"payments"`
}

// NewProviderMaster returns an empty master; updates (when not nil)
// receive every provider Epic changed, to be sent to Sinew.
func NewProviderMaster(facility string, echo bool) *ProviderMaster {
	return &ProviderMaster{bySER: map[string]*mfn.Provider{}, seen: map[string]bool{}, nextID: 100001, suppliers: map[string]mfn.Supplier{}, refunds: map[string]*Refund{},
		facility: facility, echo: echo, updates: make(chan mfn.Provider, 1024)}
}

// Providers returns a copy of the master, ordered by SER id.
func (pm *ProviderMaster) Providers() []mfn.Provider {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	out := make([]mfn.Provider, 0, len(pm.bySER))
	for _, p := range pm.bySER {
		c := *p
		c.Credentials = slices.Clone(p.Credentials)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b mfn.Provider) int { return compareStr(a.SER, b.SER) })
	return out
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// refundPayment records a payment status against its refund; Resolute
// refuses (AE) a reference it has no refund for and an amount other than
// the refund's.
func (pm *ProviderMaster) refundPayment(msg *hl7.Message) []byte {
	p, err := refund.Read(msg)
	pm.mu.Lock()
	defer pm.mu.Unlock()
	reject := func(code, text string, field int) []byte {
		pm.counts.Rejected++
		return msg.Ack(hl7.AckOptions{Code: code, Text: text, Errors: []*hl7.ParseError{{Segment: "FT1", SegmentSeq: 1, Field: field, Code: hl7.CodeUnknownKey, Msg: text}}})
	}
	if err != nil {
		return reject(hl7.AR, err.Error(), 2)
	}
	r := pm.refunds[p.Reference]
	if r == nil {
		return reject(hl7.AE, "no patient refund with this reference", 2)
	}
	if r.Amount != p.Amount || r.Currency != p.Currency {
		return reject(hl7.AE, "payment amount differs from the refund's", 11)
	}
	if pm.seen[msg.ControlID()] {
		pm.counts.Duplicates++
	} else {
		r.Payments = append(r.Payments, p)
	}
	pm.seen[msg.ControlID()] = true
	pm.counts.Applied++
	return msg.Ack(hl7.AckOptions{Code: hl7.AA})
}

// AddRefund records a patient refund Resolute issued.
func (pm *ProviderMaster) AddRefund(r Refund) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	c := r
	pm.refunds[r.Reference] = &c
}

// AddSyntheticRefunds records the simulators' day of refunds 1..n
// (refund.Synthetic), in USD.
func (pm *ProviderMaster) AddSyntheticRefunds(n int) {
	for k := 1; k <= n; k++ {
		ref, amt := refund.Synthetic(k)
		pm.AddRefund(Refund{Reference: ref, Amount: amt, Currency: "USD"})
	}
}

// Refunds returns the refunds with their payment history, by reference.
func (pm *ProviderMaster) Refunds() []Refund {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	out := make([]Refund, 0, len(pm.refunds))
	for _, r := range pm.refunds {
		c := *r
		c.Payments = slices.Clone(r.Payments)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Refund) int { return compareStr(a.Reference, b.Reference) })
	return out
}

// Suppliers returns the supplier reference, ordered by number.
func (pm *ProviderMaster) Suppliers() []mfn.Supplier {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	out := make([]mfn.Supplier, 0, len(pm.suppliers))
	for _, s := range pm.suppliers {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b mfn.Supplier) int { return compareStr(a.Number, b.Number) })
	return out
}

// Counts returns what the inbound interface received so far.
func (pm *ProviderMaster) Counts() Inbound {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.counts
}

// SetFault sets what the next messages get.
func (pm *ProviderMaster) SetFault(f Fault) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.faults = f
}

// takeFault returns the fault for one message and uses it up.
func (pm *ProviderMaster) takeFault() Fault {
	f := pm.faults
	if f.Mode == "" || f.Mode == "ack" {
		return Fault{}
	}
	if f.Count > 0 {
		pm.faults.Count--
		if pm.faults.Count == 0 {
			pm.faults = Fault{}
		}
	}
	return f
}

// ServeMLLP answers one MFN^M02 from Sinew.
func (pm *ProviderMaster) ServeMLLP(ctx context.Context, _ *mllp.Conn, raw []byte) []byte {
	msg, err := hl7.Parse(raw)
	if err != nil {
		pm.mu.Lock()
		pm.counts.Received++
		pm.counts.Rejected++
		pm.mu.Unlock()
		return hl7.Nak(raw, hl7.AckOptions{Code: hl7.AR, Errors: []*hl7.ParseError{hl7.ErrorOf(err)}, Text: "message cannot be parsed", Application: ProviderApp})
	}
	pm.mu.Lock()
	pm.counts.Received++
	f := pm.takeFault()
	pm.mu.Unlock()
	switch f.Mode {
	case "drop":
		pm.mu.Lock()
		pm.counts.Dropped++
		pm.mu.Unlock()
		return nil
	case "ae", "ar":
		code, text, ec := hl7.AE, "simulated: provider record locked by another user", hl7.CodeRecordLocked
		if f.Mode == "ar" {
			code, text, ec = hl7.AR, "simulated: provider record rejected by Epic", hl7.CodeInternal
		}
		if f.Text != "" {
			text = f.Text
		}
		pm.mu.Lock()
		pm.counts.Rejected++
		pm.mu.Unlock()
		return msg.Ack(hl7.AckOptions{Code: code, Text: text, Errors: []*hl7.ParseError{{Segment: "MFE", SegmentSeq: 1, Field: 4, Code: ec, Msg: text}}})
	}
	if refund.Is(msg) {
		return pm.refundPayment(msg)
	}
	if mfn.IsSupplier(msg) {
		sup, err := mfn.ReadSupplier(msg)
		if err != nil {
			pm.mu.Lock()
			pm.counts.Rejected++
			pm.mu.Unlock()
			return msg.Ack(hl7.AckOptions{Code: hl7.AR, Text: err.Error(), Errors: []*hl7.ParseError{fieldError(err)}})
		}
		pm.mu.Lock()
		if pm.seen[msg.ControlID()] {
			pm.counts.Duplicates++
		}
		pm.seen[msg.ControlID()] = true
		pm.suppliers[sup.Number] = sup // add or update by number
		pm.counts.Applied++
		pm.mu.Unlock()
		if f.Mode == "delay" {
			select {
			case <-ctx.Done():
			case <-time.After(f.Delay):
			}
		}
		return msg.Ack(hl7.AckOptions{Code: hl7.AA})
	}
	m, err := mfn.Read(msg)
	if err != nil {
		pm.mu.Lock()
		pm.counts.Rejected++
		pm.mu.Unlock()
		return msg.Ack(hl7.AckOptions{Code: hl7.AR, Text: err.Error(), Errors: []*hl7.ParseError{fieldError(err)}})
	}
	changed, aerr := pm.apply(m)
	if aerr != nil {
		pm.mu.Lock()
		pm.counts.Rejected++
		pm.mu.Unlock()
		return msg.Ack(hl7.AckOptions{Code: hl7.AE, Text: aerr.Error(), Errors: []*hl7.ParseError{{Segment: "MFE", SegmentSeq: 1, Field: 4, Code: hl7.CodeUnknownKey, Msg: aerr.Error()}}})
	}
	if changed != nil && pm.echo {
		pm.emit(*changed)
	}
	if f.Mode == "delay" {
		select {
		case <-ctx.Done():
		case <-time.After(f.Delay):
		}
	}
	return msg.Ack(hl7.AckOptions{Code: hl7.AA})
}

func fieldError(err error) *hl7.ParseError {
	var fe *mfn.FieldError
	if !errors.As(err, &fe) {
		if pe := hl7.ErrorOf(err); pe != nil {
			return pe
		}
		return &hl7.ParseError{Code: hl7.CodeInternal, Msg: "record cannot be read"}
	}
	pe := &hl7.ParseError{Code: hl7.CodeRequiredField, Msg: fe.Why}
	if p, perr := hl7.ParsePath(fe.Path); perr == nil {
		pe.Segment, pe.SegmentSeq, pe.Field, pe.Component = p.Segment, p.SegRep+1, p.Field, p.Component
		if p.Field > 0 {
			pe.Rep = p.Rep + 1
		}
	} else {
		pe.Segment = fe.Path[:min(3, len(fe.Path))]
	}
	return pe
}

// apply makes one record Epic's: MAD or MUP of a known provider updates it
// (Epic's inbound provider interface adds or updates), MDC deactivates,
// MAC reactivates. A record for an unknown SER is refused. A resent
// control id is counted as a duplicate and applied again (idempotently:
// the same record gives the same provider). It returns the provider when
// anything changed.
func (pm *ProviderMaster) apply(m mfn.Message) (*mfn.Provider, error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if id := m.Header.ControlID; id != "" {
		if pm.seen[id] {
			pm.counts.Duplicates++
		}
		pm.seen[id] = true
	}
	in := m.Provider
	cur := pm.find(in)
	if cur == nil {
		if in.SER != "" {
			return nil, fmt.Errorf("no provider with SER id %s", in.SER)
		}
		if m.Event == mfn.Deactivate || m.Event == mfn.Reactivate {
			return nil, errors.New("no provider for this person number to (de)activate")
		}
		p := in
		p.SER = "SER" + strconv.Itoa(pm.nextID)
		p.EMP = "EMP" + strconv.Itoa(pm.nextID)
		pm.nextID++
		pm.bySER[p.SER] = &p
		pm.counts.Applied++
		c := p
		return &c, nil
	}
	before := *cur
	before.Credentials = slices.Clone(cur.Credentials)
	// HL7 v2: an empty field leaves Epic's value as it is; STF-7 is
	// always given. Epic's own ids stay.
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cur.PersonNumber, in.PersonNumber)
	set(&cur.AssignmentNumber, in.AssignmentNumber)
	set(&cur.Family, in.Family)
	set(&cur.Given, in.Given)
	set(&cur.ProviderType, in.ProviderType)
	set(&cur.Department, in.Department)
	set(&cur.Job, in.Job)
	set(&cur.Manager, in.Manager)
	set(&cur.NPI, in.NPI)
	set(&cur.Specialty, in.Specialty)
	if len(in.Credentials) > 0 {
		cur.Credentials = slices.Clone(in.Credentials)
	}
	cur.Active = in.Active
	switch m.Event {
	case mfn.Deactivate:
		cur.Active = false
	case mfn.Reactivate:
		cur.Active = true
	}
	pm.counts.Applied++
	if equalProvider(before, *cur) {
		return nil, nil
	}
	c := *cur
	return &c, nil
}

func (pm *ProviderMaster) find(in mfn.Provider) *mfn.Provider {
	if in.SER != "" {
		return pm.bySER[in.SER]
	}
	for _, p := range pm.bySER {
		if in.PersonNumber != "" && p.PersonNumber == in.PersonNumber {
			return p
		}
	}
	return nil
}

func equalProvider(a, b mfn.Provider) bool {
	as, bs := a.CredentialsString(), b.CredentialsString()
	a.Credentials, b.Credentials = nil, nil
	return reflect.DeepEqual(a, b) && as == bs
}

// Edit is an Epic user's change to a provider (the clinical side: NPI,
// specialty, credentials, provider type; HR fields may be edited too, to
// show Sinew does not let them win). Empty fields are left alone.
type Edit struct {
	NPI          string           `json:"npi,omitempty"`
	Specialty    string           `json:"specialty,omitempty"`
	ProviderType string           `json:"provider_type,omitempty"`
	Credentials  []mfn.Credential `json:"credentials,omitempty"`
	Family       string           `json:"family,omitempty"`
	Given        string           `json:"given,omitempty"`
	Department   string           `json:"department,omitempty"`
}

// EditProvider applies an Epic-side change and queues Epic's provider
// update for Sinew.
func (pm *ProviderMaster) EditProvider(ser string, e Edit) (mfn.Provider, error) {
	pm.mu.Lock()
	p := pm.bySER[ser]
	if p == nil {
		pm.mu.Unlock()
		return mfn.Provider{}, fmt.Errorf("no provider %s", ser)
	}
	if e.NPI != "" {
		if !mfn.ValidNPI(e.NPI) {
			pm.mu.Unlock()
			return mfn.Provider{}, errors.New("npi fails its check digit")
		}
		p.NPI = e.NPI
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&p.Specialty, e.Specialty)
	set(&p.ProviderType, e.ProviderType)
	set(&p.Family, e.Family)
	set(&p.Given, e.Given)
	set(&p.Department, e.Department)
	if e.Credentials != nil {
		p.Credentials = slices.Clone(e.Credentials)
	}
	c := *p
	pm.mu.Unlock()
	pm.emit(c)
	return c, nil
}

func (pm *ProviderMaster) emit(p mfn.Provider) {
	select {
	case pm.updates <- p:
	default: // the sender is gone or far behind; the nightly refresh repairs it
	}
}

// Updates are Epic's provider updates waiting to be sent.
func (pm *ProviderMaster) Updates() <-chan mfn.Provider { return pm.updates }

// UpdateMessage is Epic's outbound provider update for p.
func (pm *ProviderMaster) UpdateMessage(p mfn.Provider, now time.Time, ctrl string) ([]byte, error) {
	return mfn.Build(mfn.Message{
		Header: mfn.Header{SendingApp: ProviderApp, SendingFacility: pm.facility, ReceivingApp: "SINEW", ReceivingFacility: pm.facility, ControlID: ctrl, Time: now},
		Event:  mfn.Update, Effective: now, Provider: p,
	})
}

// SimHandler serves the simulator's endpoints:
// GET /sim/suppliers (the supplier reference), GET /sim/providers, GET /sim/providers/{ser}, POST /sim/providers/{ser}
// (an Edit: an Epic user's change), GET /sim/inbound (counts), GET, POST
// and DELETE /sim/faults.
func (pm *ProviderMaster) SimHandler(mux *http.ServeMux) {
	writeJSON := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /sim/providers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, pm.Providers())
	})
	mux.HandleFunc("GET /sim/providers/{ser}", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range pm.Providers() {
			if p.SER == r.PathValue("ser") {
				writeJSON(w, http.StatusOK, p)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such provider"})
	})
	mux.HandleFunc("POST /sim/providers/{ser}", func(w http.ResponseWriter, r *http.Request) {
		var e Edit
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body is not an edit: " + err.Error()})
			return
		}
		p, err := pm.EditProvider(r.PathValue("ser"), e)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /sim/refunds", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, pm.Refunds())
	})
	mux.HandleFunc("POST /sim/refunds", func(w http.ResponseWriter, r *http.Request) {
		var in Refund
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Reference == "" || in.Amount <= 0 || in.Currency == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a refund needs reference, amount (\"12.34\") and currency"})
			return
		}
		in.Payments = nil
		pm.AddRefund(in)
		writeJSON(w, http.StatusCreated, in)
	})
	mux.HandleFunc("GET /sim/suppliers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, pm.Suppliers())
	})
	mux.HandleFunc("GET /sim/inbound", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, pm.Counts())
	})
	mux.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		pm.mu.Lock()
		f := pm.faults
		pm.mu.Unlock()
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || !slices.Contains([]string{"", "ack", "ae", "ar", "delay", "drop"}, f.Mode) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "mode must be ack, ae, ar, delay or drop"})
			return
		}
		pm.SetFault(f)
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		pm.SetFault(Fault{})
		w.WriteHeader(http.StatusNoContent)
	})
}

// serveInbound runs the inbound MLLP interface, the /sim/ endpoint and
// the sender of Epic's provider updates until ctx ends.
func (s *Service) serveInbound(ctx context.Context) error {
	ic := s.cfg.Inbound
	log := s.bus.Logger()
	srv, err := mllp.NewServer(mllp.ServerConfig{Addr: ic.Addr, Logger: *log}, s.providers)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.ListenAndServe(ctx); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Str("addr", ic.Addr).Msg("Epic inbound interface stopped")
		}
	})
	wg.Go(func() { s.sendProviderUpdates(ctx) })
	s.providers.AddSyntheticRefunds(ic.Refunds)
	if s.cfg.Traffic.Enabled && ic.EditEvery > 0 {
		wg.Go(func() { s.providers.editDay(ctx, ic.EditEvery) })
	}
	log.Info().Str("mllp", ic.Addr).Str("sim", ic.SimAddr).Msg("Epic inbound provider interface listening")
	wg.Wait()
	return nil
}

// serveSim serves the /sim/ endpoints on Inbound.SimAddr until ctx ends:
// Epic's masters and the inbound faults while the inbound interface is
// on, the FHIR simulator's routes while its server is.
func (s *Service) serveSim(ctx context.Context) (func(), error) {
	addr := s.cfg.Inbound.SimAddr
	mux := http.NewServeMux()
	if s.providers != nil {
		s.providers.SimHandler(mux)
	}
	if s.fhir != nil {
		s.fhir.FaultRoutes(mux)
		s.fhir.SpecialtyRoutes(mux)
		s.fhir.ChartRoutes(mux)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("epicsim: sim listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-done
	}, nil
}

// editDay changes one provider's specialty every interval, as Epic's
// credentialing staff do, until ctx ends.
func (pm *ProviderMaster) editDay(ctx context.Context, every time.Duration) {
	specialties := []string{"Cardiology", "Oncology", "Internal Medicine", "Pediatrics"}
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ps := pm.Providers()
		if len(ps) == 0 {
			continue
		}
		_, _ = pm.EditProvider(ps[n%len(ps)].SER, Edit{Specialty: specialties[n%len(specialties)]})
	}
}

// Providers is Epic's provider master (nil while the inbound interface is
// off).
func (s *Service) Providers() *ProviderMaster { return s.providers }

// sendProviderUpdates sends Epic's provider updates to Sinew's ingest.
func (s *Service) sendProviderUpdates(ctx context.Context) {
	var c *mllp.Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	n := 0
	for {
		var p mfn.Provider
		select {
		case <-ctx.Done():
			return
		case p = <-s.providers.Updates():
		}
		if c == nil {
			var err error
			if c, err = s.dial(ctx); err != nil {
				return
			}
		}
		n++
		msg, err := s.providers.UpdateMessage(p, time.Now(), fmt.Sprintf("PRV%010d", n))
		if err != nil {
			s.bus.Logger().Warn().Err(err).Msg("provider update not built")
			continue
		}
		if _, err := c.Send(ctx, msg); err != nil && ctx.Err() == nil {
			s.bus.Logger().Warn().Err(err).Msg("provider update not acknowledged")
		}
	}
}
