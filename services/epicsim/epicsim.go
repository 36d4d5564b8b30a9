// Package epicsim simulates Epic's published interfaces for `make run`, the
// cutover drill and the e2e tests. Today it is an Interconnect MLLP sender of
// synthetic HL7 v2 traffic (registrations, updates, Willow dispenses with
// 340B flags and pharmacy charges, OpTime case carts with implants, Beaker
// reagent consumption, formulary, preference-card and supplier MFNs), and
// drops Resolute and Clarity files and Beaker's stock counts into the drop
// folders or serves them over SFTP (sftp.go).
// Every patient it invents is fictitious.
package epicsim

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// Config is the simulator's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// MLLPTarget is where synthetic HL7 traffic is sent (Sinew's ingest).
	MLLPTarget string        `yaml:"mllp_target"`
	Traffic    TrafficConfig `yaml:"traffic"`
	// ResoluteDrop, when set, receives yesterday's synthetic Resolute HB
	// journal file when traffic starts (the same bytes on every start, so
	// Sinew ingests it once).
	ResoluteDrop string `yaml:"resolute_drop"`
	// ClarityDrop, when set, receives every other micro-batch as a Clarity
	// CSV extract (the others go to ResoluteDrop as Resolute files).
	ClarityDrop string `yaml:"clarity_drop"`
	// Micro shapes the intra-day micro-batches written while traffic runs.
	Micro MicroConfig `yaml:"micro"`
	// SFTP is Epic's outbound file share (off while its addr is empty).
	SFTP SFTPConfig `yaml:"sftp"`
	// Onhand shapes Beaker's stock count files (onhand.go).
	Onhand OnhandConfig `yaml:"onhand"`
	// Inbound is Epic's inbound interface for Sinew's messages
	// (providers.go); off while its addr is empty.
	Inbound InboundConfig `yaml:"inbound"`
	// FHIR is the FHIR R4 server (fhirsim.go; off unless enabled).
	FHIR FHIRConfig `yaml:"fhir"`
}

// MicroConfig shapes intra-day micro-batches: small balanced HB files
// (cadence "micro"), matching the demo crosswalk and chart.
type MicroConfig struct {
	// Interval between micro-batches; 0 turns them off.
	Interval        time.Duration `yaml:"interval"`
	Journals        int           `yaml:"journals"`
	LinesPerJournal int           `yaml:"lines_per_journal"`
}

// TrafficConfig shapes the synthetic HL7 feed.
type TrafficConfig struct {
	Enabled bool `yaml:"enabled"`
	// Rate is messages per second.
	Rate float64 `yaml:"rate"`
	// Seed makes a run's messages repeatable.
	Seed uint64 `yaml:"seed"`
	// Facility is MSH-4 of every message.
	Facility string `yaml:"facility"`
	// UnmappedRate is the share of dispenses sent with an NDC that no demo
	// crosswalk maps, to exercise the DLQ; 0 (off) by default.
	UnmappedRate float64 `yaml:"unmapped_rate"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{
		ServiceConfig: bus.DefaultServiceConfig(),
		MLLPTarget:    "127.0.0.1:2575",
		Traffic:       TrafficConfig{Rate: 2, Seed: 1, Facility: "STMARYS"},
		Micro:         MicroConfig{Interval: 5 * time.Minute, Journals: 2, LinesPerJournal: 5},
		SFTP:          SFTPConfig{User: "epic", Password: "epicsim", DailyFile: true, SupplierDir: "supplier-ref"},
		Onhand:        OnhandConfig{Interval: 24 * time.Hour, First: time.Minute, Starting: "1000"},
		Inbound:       InboundConfig{EditEvery: 2 * time.Minute},
		FHIR:          DefaultFHIRConfig(),
	}
	c.HTTPAddr = "127.0.0.1:9107"
	return c
}

// Service is the running simulator.
type Service struct {
	cfg  Config
	bus  *bus.Bus
	sent *prometheus.CounterVec
	n    atomic.Int64
	// providers is Epic's provider master (nil while Inbound is off).
	providers *ProviderMaster
	fhir      *FHIRSim
}

// New returns the simulator on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	sent, err := telemetry.Register(b.Metrics(), prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_epicsim_hl7_sent_total", Help: "Synthetic HL7 messages sent, by type and answer.",
	}, []string{"type", "ack"}))
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, bus: b, sent: sent}
	if cfg.FHIR.Enabled {
		s.fhir = NewFHIRSim(cfg.FHIR, time.Time{}, nil)
		s.fhir.SetURL(cfg.FHIR.URL)
		if cfg.FHIR.ChartFile != "" {
			if _, err := s.fhir.ChartFile(cfg.FHIR.ChartFile, time.Now()); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Inbound.Addr != "" {
		fac := cfg.Inbound.Facility
		if fac == "" {
			fac = cfg.Traffic.Facility
		}
		s.providers = NewProviderMaster(fac, cfg.Inbound.Echo)
	}
	return s, nil
}

// Ready is nil while connected to NATS.
func (s *Service) Ready() error { return s.bus.Ready() }

// Sent is how many messages were acknowledged so far.
func (s *Service) Sent() int64 { return s.n.Load() }

// Run sends traffic, when enabled, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var sftpSrv *SFTPServer
	if s.cfg.SFTP.Addr != "" {
		sftpSrv = s.serveSFTP(ctx)
	}
	if s.cfg.Inbound.Addr != "" {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := s.serveInbound(ctx); err != nil {
				s.bus.Logger().Error().Err(err).Msg("Epic inbound interface not started")
			}
		}()
		defer func() { <-done }()
	}
	if s.cfg.Inbound.SimAddr != "" && (s.providers != nil || s.fhir != nil) {
		// As the inbound interface: a busy port is logged, not fatal.
		if stop, err := s.serveSim(ctx); err != nil {
			s.bus.Logger().Error().Err(err).Msg("epicsim /sim/ endpoints not started")
		} else {
			defer stop()
		}
	}
	if s.fhir != nil && s.cfg.FHIR.Addr != "" {
		stop, err := s.serveFHIR(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}
	t := s.cfg.Traffic
	if !t.Enabled || t.Rate <= 0 {
		<-ctx.Done()
		return nil
	}
	log := s.bus.Logger()
	daily := s.cfg.ResoluteDrop
	if sftpSrv != nil && s.cfg.SFTP.DailyFile {
		daily = filepath.Join(s.cfg.SFTP.Root, "resolute")
	}
	if daily != "" {
		if name, err := s.dropResolute(daily, time.Now().UTC().AddDate(0, 0, -1)); err != nil {
			log.Warn().Err(err).Msg("synthetic Resolute file not written")
		} else {
			log.Info().Str("file", name).Str("dir", daily).Msg("synthetic Resolute journal file dropped")
		}
	}
	if s.cfg.Micro.Interval > 0 && s.cfg.ResoluteDrop != "" {
		done := make(chan struct{})
		go func() { defer close(done); s.microBatches(ctx) }()
		defer func() { <-done }()
	}
	c, err := s.dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer c.Close()
	log.Info().Str("target", s.cfg.MLLPTarget).Float64("rate_per_s", t.Rate).Msg("synthetic HL7 traffic started")
	gen := NewGenerator(t.Seed, t.Facility)
	gen.UnmappedRate = t.UnmappedRate
	tick := time.NewTicker(time.Duration(float64(time.Second) / t.Rate))
	defer tick.Stop()
	// Stock counts are taken in this loop, between two messages: a count
	// is a consistent snapshot of what was sent.
	var book *StockBook
	var countDue <-chan time.Time
	if dir := s.cfg.onhandDrop(); dir != "" && s.cfg.Onhand.Interval > 0 {
		if book, err = NewStockBook(s.cfg.Onhand.Starting); err != nil {
			return err
		}
		countDue = time.After(s.cfg.Onhand.First)
	}
	for {
		select {
		case <-ctx.Done():
			log.Info().Int64("sent", s.n.Load()).Msg("synthetic HL7 traffic stopped")
			return nil
		case <-countDue:
			countDue = time.After(s.cfg.Onhand.Interval)
			if err := s.takeCount(ctx, book); err != nil {
				log.Warn().Err(err).Msg("stock count not written")
			}
			continue
		case <-tick.C:
		}
		if s.fhir != nil {
			gen.Overuse = s.fhir.Overuse()
		}
		msg, typ := gen.Next(time.Now())
		if s.fhir != nil {
			s.fhir.Chart(gen.Clinical()) // Epic charts whatever the interface answers
		}
		reply, err := c.Send(ctx, msg)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn().Err(err).Msg("synthetic message not acknowledged")
			s.sent.WithLabelValues(typ, "none").Inc()
			continue
		}
		code := "?"
		if ack, err := hl7.Parse(reply); err == nil {
			code = ack.Get("MSA-1")
		}
		s.sent.WithLabelValues(typ, code).Inc()
		s.n.Add(1)
		if book != nil && code == "AA" {
			book.Consume(gen.Consumed())
		}
	}
}

// takeCount writes Beaker's stock count as of the next whole second and
// waits for it: messages are stamped to the second (MSH-7), so every
// message sent before the count is dated before it and every later one at
// or after it, as the reconciler reads Fusion's transactions.
func (s *Service) takeCount(ctx context.Context, book *StockBook) error {
	at := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	data, err := book.Count(at)
	if err != nil {
		return err
	}
	dir := s.cfg.onhandDrop()
	name, err := WriteOnhandCount(dir, at, data)
	if err != nil {
		return err
	}
	s.bus.Logger().Info().Str("file", name).Str("dir", dir).Msg("synthetic Beaker stock count dropped")
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(at)):
	}
	return nil
}

// dropResolute writes a day's balanced HB journal file matching the demo
// crosswalk (deploy/demo/coa.csv): written under a .part name, then renamed.
func (s *Service) dropResolute(dir string, day time.Time) (string, error) {
	day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	name := "HB-" + day.Format("20060102") + ".txt"
	final := filepath.Join(dir, name)
	if _, err := os.Stat(final); err == nil {
		return name, nil
	}
	part := final + ".part"
	f, err := os.Create(part)
	if err != nil {
		return "", err
	}
	_, _, err = resolute.Generate(f, resolute.GenerateOptions{
		BatchID: "HB-" + day.Format("20060102") + "-001", Kind: "HB", PostingDate: day,
		Journals: 20, LinesPerJournal: 50, ServiceAreas: []string{"10", "20"},
		CostCenters: []string{"6010", "6020"}, RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010",
		Seed: uint64(day.Unix()),
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return name, os.Rename(part, final)
}

// microBatches writes a small balanced batch every Micro.Interval until
// ctx ends: alternately a Resolute file into ResoluteDrop and, when
// ClarityDrop is set, a Clarity CSV extract into it.
func (s *Service) microBatches(ctx context.Context) {
	t := time.NewTicker(s.cfg.Micro.Interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dir, clarity := s.cfg.ResoluteDrop, false
		if s.cfg.ClarityDrop != "" && n%2 == 0 {
			dir, clarity = s.cfg.ClarityDrop, true
		}
		name, err := WriteMicroBatch(dir, time.Now().UTC(), s.cfg.Micro, clarity)
		if err != nil {
			s.bus.Logger().Warn().Err(err).Msg("micro-batch not written")
			continue
		}
		s.bus.Logger().Info().Str("file", name).Str("dir", dir).Msg("synthetic micro-batch dropped")
	}
}

// WriteMicroBatch writes one micro-batch for the moment now into dir (a
// Clarity CSV extract when clarity is set, else a Resolute file), under a
// .part name renamed into place, and returns its name. Batch ids carry the
// cadence: HB-<date>-M<hhmmss>.
func WriteMicroBatch(dir string, now time.Time, o MicroConfig, clarity bool) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	id := "HB-" + day.Format("20060102") + "-M" + now.Format("150405")
	var pipe bytes.Buffer
	if _, _, err := resolute.Generate(&pipe, resolute.GenerateOptions{
		BatchID: id, Kind: "HB", PostingDate: day, Journals: max(o.Journals, 1), LinesPerJournal: max(o.LinesPerJournal, 2),
		ServiceAreas: []string{"10", "20"}, CostCenters: []string{"6010", "6020"}, RevenueAccounts: []string{"40100", "40200"},
		ARAccount: "11010", Seed: uint64(now.UnixNano()),
	}); err != nil {
		return "", err
	}
	name, data := id+".txt", pipe.Bytes()
	if clarity {
		var csv bytes.Buffer
		if err := resolute.WriteClarityCSV(&csv, &pipe, resolute.Clarity{}, resolute.DefaultLayout()); err != nil {
			return "", err
		}
		name, data = id+".csv", csv.Bytes()
	}
	part := filepath.Join(dir, name+".part")
	if err := os.WriteFile(part, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Rename(part, filepath.Join(dir, name))
}

// dial connects to the target, waiting for it to listen.
func (s *Service) dial(ctx context.Context) (*mllp.Client, error) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: s.cfg.MLLPTarget, Match: hl7.AckMatches})
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// Generator invents a hospital day's HL7 v2 messages: fictitious patients
// registering, updated, dispensed drugs (some under 340B) and charged;
// Willow pharmacy charges (some credits) and account openings, OpTime case
// completions (implants with lot and serial numbers), Beaker reagent
// consumption, and, first thing, a formulary, a preference-card and a
// supplier MFN. Codes are those the demo crosswalks (deploy/demo) map to
// fusionsim's master data.
type Generator struct {
	rnd      *rand.Rand
	facility string
	seq      int
	consumed []Reagent // by the message Next returned last
	clinical Clinical  // what Epic charted for the message Next returned last
	// UnmappedRate is the share of dispenses sent with an NDC no demo
	// crosswalk maps (0 by default): they exercise the DLQ.
	UnmappedRate float64
	// Overuse multiplies a reagent's consumption (by Beaker reagent code):
	// an instrument using more than its tests need (the FHIR fault
	// over_consume). Nil or 1: as declared per test.
	Overuse map[string]recon.Qty
}

// NewGenerator returns a generator; the same seed gives the same messages.
func NewGenerator(seed uint64, facility string) *Generator {
	return &Generator{rnd: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), facility: facility}
}

var (
	given  = []string{"ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"}
	family = []string{"TESTPATIENT", "SIMULATED", "SYNTHETIC", "EXAMPLE"}
	// drugs are the demo formulary: NDC and Willow charge code of fusionsim's RX items.
	// Each drug's form (SNOMED) and strength (value, unit per unit) are
	// what its Willow formulary entry (ZFM) and its Epic Medication (FHIR)
	// both state: the formulary-check flow compares them.
	drugs = []struct{ ndc, charge, name, uom, formCode, form, strength, unit, per string }{
		{"0143-9634-01", "PHM1001", "Ondansetron 4 mg/2 mL injection", "EA", "385219001", "Solution for injection", "2", "mg", "mL"},
		{"0781-3207-95", "PHM1002", "Ceftriaxone 1 g vial", "EA", "385223009", "Powder for solution for injection", "1", "g", "vial"},
		{"0409-4888-10", "PHM1003", "Heparin 5,000 units/mL 1 mL vial", "mL", "385219001", "Solution for injection", "5000", "[iU]", "mL"},
		{"0904-6734-61", "PHM1004", "Acetaminophen 500 mg tablet", "TAB", "385055001", "Tablet", "500", "mg", "tablet"},
	}
	// supplies are OpTime supply ids of fusionsim's SUP and IMP items.
	supplies = []struct{ id, name string }{
		{"OR-TRO12", "Laparoscopic trocar 12 mm"}, {"OR-SUT30", "Suture 3-0 absorbable"},
		{"OR-HIP4", "Hip stem cemented size 4"}, {"OR-SCR45", "Cortical bone screw 4.5 mm"},
	}
	units = []string{"4WEST", "5EAST", "ED", "ICU"}
)

// PatientNames are every synthetic patient name the generator can write
// in PID-5 (FAMILY^GIVEN): PHI scans look for them in what Sinew leaves
// outside HL7_IN (logs, metrics, subjects, keys, DLQ reasons, audit).
func PatientNames() []string {
	var out []string
	for _, f := range family {
		for _, g := range given {
			out = append(out, f+"^"+g)
		}
	}
	return out
}

// unmappedNDC is in no demo crosswalk.
const unmappedNDC = "0000-0000-00"

// Next returns the next message (CR terminators) and its type.
func (g *Generator) Next(now time.Time) ([]byte, string) {
	g.seq++
	g.consumed = g.consumed[:0]
	g.clinical = Clinical{}
	ts := now.UTC().Format("20060102150405")
	ctrl := fmt.Sprintf("SIM%010d", g.seq)
	// Business ids (prescription, transaction, case, accession) are unique
	// per run and minute: a restarted simulator does not repeat yesterday's.
	id := now.UTC().Format("0601021504") + fmt.Sprintf("%05d", g.seq%100000)
	mrn := fmt.Sprintf("E%07d", 1000000+g.rnd.IntN(9000000))
	name := family[g.rnd.IntN(len(family))] + "^" + given[g.rnd.IntN(len(given))]
	unit := units[g.rnd.IntN(len(units))]
	pid := "PID|1||" + mrn + "^^^" + g.facility + "^MR||" + name + "||19" + fmt.Sprintf("%02d%02d%02d", 40+g.rnd.IntN(60), 1+g.rnd.IntN(12), 1+g.rnd.IntN(28)) + "|" + []string{"F", "M"}[g.rnd.IntN(2)]
	pv1 := "PV1|1|I|" + unit + "^^^" + g.facility
	var segs []string
	var typ string
	switch g.seq {
	case 1:
		return g.join(g.formularyMFN(ts, ctrl)), "MFN^M15"
	case 2:
		return g.join(g.preferenceCardMFN(ts, ctrl)), "MFN^M01"
	case 3:
		return g.join(g.supplierMFN(ts, ctrl)), "MFN^M01"
	}
	switch r := g.rnd.IntN(20); {
	case r < 3:
		typ = "ADT^A04"
		segs = []string{msh(g.facility, "ADT", ts, "ADT^A04^ADT_A01", ctrl), "EVN|A04|" + ts, pid, pv1}
	case r < 6:
		typ = "ADT^A08"
		segs = []string{msh(g.facility, "ADT", ts, "ADT^A08^ADT_A01", ctrl), "EVN|A08|" + ts, pid, pv1}
	case r < 11:
		typ = "RDS^O13"
		d := drugs[g.rnd.IntN(len(drugs))]
		ndc := d.ndc
		if g.UnmappedRate > 0 && g.rnd.Float64() < g.UnmappedRate {
			ndc = unmappedNDC
		}
		qty := 1 + g.rnd.IntN(4)
		flag340b := []string{"N", "Y"}[g.rnd.IntN(2)]
		rx := "RX" + id
		segs = []string{msh(g.facility, "WILLOW", ts, "RDS^O13^RDS_O13", ctrl), pid, pv1,
			"ORC|RE|" + rx + "|" + rx + "||CM",
			"RXD|1|" + ndc + "^" + d.name + "^NDC|" + ts + "|" + fmt.Sprint(qty) + "|" + d.uom + "^^UCUM||" + rx + "|||||||||||||||" + unit + "PHARM",
			"FT1|1|||" + ts + "||CG|" + ndc + "^" + d.name + "^NDC|||" + fmt.Sprint(qty) + "||||" + unit,
			"ZRX|" + flag340b + "|" + unit + "PHARM"}
	case r < 13:
		typ = "DFT^P03"
		segs = []string{msh(g.facility, "RESOLUTE", ts, "DFT^P03^DFT_P03", ctrl), "EVN|P03|" + ts, pid, pv1,
			fmt.Sprintf("FT1|1|||%s||CG|%d^Charge %d^CDM|||1|%d.%02d&USD||||%s", ts, 30000+g.rnd.IntN(999), g.seq, 10+g.rnd.IntN(900), g.rnd.IntN(100), unit)}
	case r < 15:
		typ = "DFT^P03"
		segs = []string{msh(g.facility, "WILLOW", ts, "DFT^P03^DFT_P03", ctrl), "EVN|P03|" + ts, pid, pv1}
		for i := 1; i <= 1+g.rnd.IntN(2); i++ {
			d := drugs[g.rnd.IntN(len(drugs))]
			kind := "CG"
			if g.rnd.IntN(4) == 0 {
				kind = "CD" // a credit: stock back on the shelf
			}
			segs = append(segs, fmt.Sprintf("FT1|%d|T%s%d||%s||%s|%s^%s^CDM|||%d|||%sPHARM", i, id, i, ts, kind, d.charge, d.name, 1+g.rnd.IntN(3), unit))
		}
		segs = append(segs, "ZRX|"+[]string{"N", "Y"}[g.rnd.IntN(2)]+"|"+unit+"PHARM")
	case r < 16:
		typ = "BAR^P01"
		segs = []string{msh(g.facility, "WILLOW", ts, "BAR^P01^BAR_P01", ctrl), "EVN|P01|" + ts, pid, pv1}
	case r < 18:
		typ = "DFT^P03"
		segs = []string{msh(g.facility, "OPTIME", ts, "DFT^P03^DFT_P03", ctrl), "EVN|P03|" + ts, pid,
			"PV1|1|I|OR" + fmt.Sprint(1+g.rnd.IntN(6)) + "^^^" + g.facility, "ZCS|CASE" + id + "|COMPLETE|ORSUITE|" + ts}
		line := 0
		g.clinical.Case = &SurgicalCase{ID: "CASE" + id, At: now.UTC().Truncate(time.Second)}
		add := func(s struct{ id, name string }, qty int, zim string) {
			line++
			segs = append(segs, fmt.Sprintf("FT1|%d|||%s||CG|%s^%s^OPTIME|||%d|||ORSUITE", line, ts, s.id, s.name, qty))
			if zim != "" {
				segs = append(segs, zim)
				g.clinical.Case.Implants += qty
			}
		}
		add(supplies[0], 1+g.rnd.IntN(3), "")
		add(supplies[1], 1+g.rnd.IntN(2), "")
		if g.rnd.IntN(2) == 0 {
			add(supplies[2], 1, fmt.Sprintf("ZIM|LOT-H4-%04d|SN-%s|20301231|ACME ORTHO", g.rnd.IntN(10000), id))
		}
		if g.rnd.IntN(2) == 0 {
			add(supplies[3], 1+g.rnd.IntN(4), fmt.Sprintf("ZIM|LOT-S45-%04d||20310630|ACME ORTHO", g.rnd.IntN(10000)))
		}
	default:
		typ = "ORU^R01"
		acc := "ACC" + id
		status := "F"
		if g.rnd.IntN(10) == 0 {
			status = "P" // preliminary: nothing consumed yet
		}
		// Drawn in the order the segments name them: the same seed gives
		// the same messages as before the stock book existed.
		hgb := fmt.Sprintf("%d.%d", 11+g.rnd.IntN(6), g.rnd.IntN(10))
		lotCBC := 10 + g.rnd.IntN(90)
		// Each test uses its instrument's declared reagent volume
		// (labTests, flows.yaml beaker-expected-use), times Overuse.
		gluValue := 70 + g.rnd.IntN(50)
		lotGlu := g.rnd.IntN(100)
		hemo, glucose := labTests[0], labTests[1]
		pk, glu := g.use(hemo), g.use(glucose)
		segs = []string{msh(g.facility, "BEAKER", ts, "ORU^R01^ORU_R01", ctrl), pid, "PV1|1|O|LAB^^^" + g.facility,
			"ORC|RE|ORD" + id + "|" + acc + "||CM",
			"OBR|1|ORD" + id + "|" + acc + "|CBC^Complete blood count^L|||" + ts + "|||||||||||||||" + ts + "|||" + status,
			"OBX|1|NM|718-7^Hemoglobin^LN||" + hgb + "|g/dL|12-16|N|||" + status + "|||||||" + hemo.device,
			"OBX|2|NM|2345-7^Glucose^LN||" + fmt.Sprint(gluValue) + "|mg/dL|70-99|N|||" + status + "|||||||" + glucose.device,
			"ZRG|CBC-PK|" + pk.String() + "|PK|LOT-CBC-" + fmt.Sprint(lotCBC) + "|" + labDepartment,
			fmt.Sprintf("ZRG|GLU-R1|%s|L|LOT-G-%d|%s", glu, lotGlu, labDepartment)}
		if status == "F" { // a preliminary result consumed nothing yet
			g.consumed = append(g.consumed, Reagent{labDepartment, "CBC-PK", "PK", pk}, Reagent{labDepartment, "GLU-R1", "L", glu})
			at := now.UTC().Truncate(time.Second)
			g.clinical.Tests = []LabResult{{Test: hemo, Accession: acc, At: at, Value: hgb}, {Test: glucose, Accession: acc, At: at, Value: fmt.Sprint(gluValue)}}
		}
	}
	return g.join(segs), typ
}

// Consumed returns the reagents the message Next returned last consumed
// (a final Beaker result's ZRG lines), in Epic's units; valid until the
// next call to Next.
func (g *Generator) Consumed() []Reagent { return g.consumed }

func (g *Generator) join(segs []string) []byte { return []byte(strings.Join(segs, "\r") + "\r") }

// formularyMFN is Willow's formulary as an MFN^M15 (MFE + IIM per item,
// and the site's ZFM|<form>|<strength>).
func (g *Generator) formularyMFN(ts, ctrl string) []string {
	segs := []string{msh(g.facility, "WILLOW", ts, "MFN^M15^MFN_M15", ctrl), "MFI|IIM^Inventory Item Master^HL70175||UPD|||AL"}
	for _, d := range drugs {
		segs = append(segs, "MFE|MUP|"+ts+"||"+d.ndc+"^"+d.name+"^NDC|CE", "IIM|"+d.ndc+"^"+d.name+"^NDC|"+d.charge+"^"+d.name+"^CDM",
			"ZFM|"+d.form+"|"+d.strength+" "+d.unit+"/"+d.per)
	}
	return segs
}

// preferenceCardMFN is an OpTime preference card's supplies as an MFN^M01.
func (g *Generator) preferenceCardMFN(ts, ctrl string) []string {
	segs := []string{msh(g.facility, "OPTIME", ts, "MFN^M01^MFN_M01", ctrl), "MFI|PREFCARD^OpTime preference card items^L||UPD|||AL"}
	for _, s := range supplies {
		segs = append(segs, "MFE|MUP|"+ts+"||"+s.id+"^"+s.name+"^OPTIME|CE", "ZPC|PC-HIP-ARTHRO|Total hip arthroplasty|1")
	}
	return segs
}

// supplierMFN is Beaker's supplier master entry for the demo supplier.
func (g *Generator) supplierMFN(ts, ctrl string) []string {
	return []string{msh(g.facility, "BEAKER", ts, "MFN^M01^MFN_M01", ctrl), "MFI|SUPPLIER^Beaker supplier master^L||UPD|||AL",
		"MFE|MUP|" + ts + "||9001^Acme Medical Supply^BEAKER|CE",
		"ZSU|Acme Medical Supply|A|ACME-MAIN|Main Hospital BU|100 Main Street|Springfield|62701|US"}
}

func msh(facility, app, ts, typ, ctrl string) string {
	return "MSH|^~\\&|" + app + "|" + facility + "|SINEW|" + facility + "|" + ts + "||" + typ + "|" + ctrl + "|P|2.5.1"
}
