// Package hl7flow is the mapping engine the real-time HL7 flows share
// (willow-inventory, optime-materials, beaker-inventory): a flow's
// flows.yaml entry routes message types to shapes (dispense, charge, case,
// reagent, item-master, supplier-master, skip) and locates site fields and
// Z-segments by Terser path; the engine reads the lines of a message,
// maps codes through the current crosswalks and builds the commands the
// loader posts to Fusion. A message maps completely or not at all: every
// line is checked before any command exists.
package hl7flow

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/decimal"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/hl7receipt"
	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Shapes a message type can be mapped with.
const (
	Dispense       = "dispense"        // RDS^O13: one inventory transaction per RXD
	Charge         = "charge"          // DFT^P03: one per FT1 charge (CG) or credit (CD)
	Case           = "case"            // OpTime case completion: one per FT1 supply line, lot/serial kept
	Reagent        = "reagent"         // Beaker order completion: one per reagent line (site segment)
	ItemMaster     = "item-master"     // MFN formulary / preference card: one ItemUpsert per MFE
	SupplierMaster = "supplier-master" // MFN supplier master: one SupplierChange per MFE
	Provider       = "provider"        // MFN^M02 staff / practitioner master: one WorkerChange (provider.go)
	Skip           = "skip"            // acknowledged, audited, no command
)

// Fusion transaction types.
const (
	Issue   = "Miscellaneous Issue"
	Receipt = "Miscellaneous Receipt"
)

// Command operations (the last token of fusion.cmd.<flow>.<op>).
const (
	OpInventory = "inventory"
	OpItem      = "item"
	OpSupplier  = "supplier"
)

type shapeDef struct {
	prefix string // business header key prefix
	source string // default item crosswalk source
	fields map[string]flows.Field
}

var ft1Credit = flows.Field{Path: "FT1-6", True: []string{"CD"}, False: []string{"CG"}}

// shapes hold each shape's default fields: standard HL7 segments. Site
// fields (Z-segments, locations, flags) come from flows.yaml.
var shapes = map[string]shapeDef{
	Dispense: {prefix: "rx", source: "ndc", fields: map[string]flows.Field{
		"code": {Path: "RXD-2-1"}, "quantity": {Path: "RXD-4"}, "unit": {Path: "RXD-5-1"},
		"header_key": {Path: "RXD-7", Required: true}, "line_id": {Path: "RXD-1"}, "date": {Path: "RXD-3"},
	}},
	Charge: {prefix: "charge", source: "charge", fields: map[string]flows.Field{
		"code": {Path: "FT1-7-1"}, "quantity": {Path: "FT1-10"}, "header_key": {Path: "FT1-2", Required: true},
		"line_id": {Path: "FT1-1"}, "date": {Path: "FT1-4"}, "credit": ft1Credit,
	}},
	Case: {prefix: "case", source: "supply", fields: map[string]flows.Field{
		"code": {Path: "FT1-7-1"}, "quantity": {Path: "FT1-10"}, "line_id": {Path: "FT1-1"}, "date": {Path: "FT1-4"},
		"credit": ft1Credit,
	}},
	Reagent: {prefix: "order", source: "reagent", fields: map[string]flows.Field{
		"header_key": {Path: "OBR-3-1", Required: true}, "date": {Path: "OBR-22"},
	}},
	ItemMaster: {prefix: "item", source: "ndc", fields: map[string]flows.Field{
		"code": {Path: "MFE-4-1"}, "event": {Path: "MFE-1"}, "entered": {Path: "MFE-2"}, "code_text": {Path: "MFE-4-2"},
	}},
	SupplierMaster: {prefix: "supplier", fields: map[string]flows.Field{
		"code": {Path: "MFE-4-1"}, "event": {Path: "MFE-1"}, "entered": {Path: "MFE-2"}, "code_text": {Path: "MFE-4-2"},
	}},
	Provider: {prefix: "provider", fields: map[string]flows.Field{
		"code": {Path: "MFE-4-1"}, "event": {Path: "MFE-1"},
	}},
	Skip: {},
}

// Shapes lists the shape names.
func Shapes() []string {
	return []string{Dispense, Charge, Case, Reagent, ItemMaster, SupplierMaster, Provider, Skip}
}

// field is a compiled flows.Field.
type field struct {
	flows.Field
	path       hl7.Path
	lineScoped bool
}

// message is how one message type is mapped.
type message struct {
	typ    string
	shape  string
	def    shapeDef
	source string
	line   string // the line segment: the segment of the code path
	fields map[string]*field
}

func (mm *message) f(name string) *field { return mm.fields[name] }

// Mapper maps one flow's messages.
type Mapper struct {
	Flow         string
	SourceSystem string
	// Secret keys the references by which error texts name field values
	// (audit.PatientRef; transform sets the deployment's audit secret).
	// Without it a text gives a value's length only.
	Secret []byte
	exact  map[string]*message // "RDS^O13"
	byType map[string]*message // "MFN" for "MFN^*"
}

// New compiles a flow's hl7 settings.
func New(f *flows.Flow) (*Mapper, error) {
	if f.HL7 == nil {
		return nil, fmt.Errorf("hl7flow: flow %s has no hl7 settings", f.ID)
	}
	mp := &Mapper{Flow: f.ID, SourceSystem: f.HL7.SourceSystem, exact: map[string]*message{}, byType: map[string]*message{}}
	if mp.SourceSystem == "" {
		mp.SourceSystem = f.Source
	}
	for typ, cfg := range f.HL7.Messages {
		def, ok := shapes[cfg.Shape]
		if !ok {
			return nil, fmt.Errorf("hl7flow: %s %s: unknown shape %q (want one of %s)", f.ID, typ, cfg.Shape, strings.Join(Shapes(), ", "))
		}
		mm := &message{typ: typ, shape: cfg.Shape, def: def, source: cfg.Source, fields: map[string]*field{}}
		if mm.source == "" {
			mm.source = def.source
		}
		merged := map[string]flows.Field{}
		for k, v := range def.fields {
			merged[k] = v
		}
		for k, v := range f.HL7.Fields {
			merged[k] = v
		}
		for k, v := range cfg.Fields {
			merged[k] = v
		}
		for name, spec := range merged {
			if spec.Path == "" {
				continue
			}
			p, err := hl7.ParsePath(spec.Path)
			if err != nil {
				return nil, fmt.Errorf("hl7flow: %s %s field %s: %w", f.ID, typ, name, err)
			}
			master := cfg.Shape == ItemMaster || cfg.Shape == SupplierMaster
			mm.fields[name] = &field{Field: spec, path: p, lineScoped: master || lineFields[name]}
		}
		if cfg.Shape != Skip {
			code := mm.fields["code"]
			if code == nil {
				return nil, fmt.Errorf("hl7flow: %s %s: shape %s needs a code field", f.ID, typ, cfg.Shape)
			}
			mm.line = code.path.Segment
			for _, need := range required(cfg.Shape) {
				if mm.fields[need] == nil {
					return nil, fmt.Errorf("hl7flow: %s %s: shape %s needs field %s", f.ID, typ, cfg.Shape, need)
				}
			}
		}
		if t, ev, ok := strings.Cut(typ, "^"); ok && ev == "*" {
			mp.byType[t] = mm
		} else {
			mp.exact[typ] = mm
		}
	}
	return mp, nil
}

func required(shape string) []string {
	switch shape {
	case Dispense, Charge, Case, Reagent:
		return []string{"quantity", "header_key", "location"}
	}
	return nil
}

// Tables are the crosswalks a message is mapped with (read per message).
// UOM may be nil.
type Tables struct {
	Items, Departments, UOM *crosswalk.Codes
}

// Version names the tables' versions, for the envelope.
func (t Tables) Version() string {
	v := ""
	if t.Items != nil {
		v = "item=" + t.Items.Version
	}
	if t.Departments != nil {
		v += ",department=" + t.Departments.Version
	}
	if t.UOM != nil {
		v += ",uom=" + t.UOM.Version
	}
	return strings.TrimPrefix(v, ",")
}

// Command is one command to publish.
type Command struct {
	Subject string
	MsgID   string // = the envelope's idempotency key
	Msg     proto.Message
}

// Result is what a message mapped to.
type Result struct {
	Commands []Command
	// Detail is the PHI-free audit detail of the mapping.
	Detail string
}

// UnmappedError is a code no crosswalk row maps: the message is dead-lettered
// and delivered by `sinew dlq replay` once the crosswalk is fixed. Its text
// names the code's path and describes the code (Value), never shows it: a
// wrong field can carry an MRN where a code belongs.
type UnmappedError struct {
	Kind, Version         string
	Code                  string // the code itself: for callers, never in a text
	Value                 Value  // how a text names Code
	Source                string
	Path, ControlID, Flow string
}

func (e *UnmappedError) Error() string {
	what := e.Kind + " code"
	if e.Source != "" {
		what = e.Kind + " code (source " + e.Source + ")"
	}
	fix := "add it to the " + e.Kind + " crosswalk and run sinew crosswalk load --kind " + e.Kind +
		" FILE, then sinew dlq replay (sinew dlq show --payload shows the message)"
	return fmt.Sprintf("unmapped %s from %s (HL7 error %d %s; value: %s) in message control id %s (flow %s): no row in crosswalk %s version %s; %s",
		what, e.Path, hl7.CodeTableValue, hl7.CodeText(hl7.CodeTableValue), e.Value, e.ControlID, e.Flow, e.Kind, e.Version, fix)
}

// ErrNoCrosswalk is returned (transient) while a needed crosswalk is not loaded.
var ErrNoCrosswalk = errors.New("hl7flow: crosswalk not loaded")

// Route returns the mapping of message type typ^event, if the flow has one.
func (mp *Mapper) Route(typ, event string) (shape string, ok bool) {
	mm := mp.lookup(typ, event)
	if mm == nil {
		return "", false
	}
	return mm.shape, true
}

func (mp *Mapper) lookup(typ, event string) *message {
	var buf [32]byte
	k := append(append(append(buf[:0], typ...), '^'), event...)
	if mm := mp.exact[string(k)]; mm != nil {
		return mm
	}
	return mp.byType[typ]
}

// Map maps message m, received as ev, with tables t, into out. A message
// type the flow does not map, and a skip shape, give no command and a
// detail. Errors with a Permanent() method (FieldError, UnmappedError) are the message's fault
// and carry a reason code; others are transient.
func (mp *Mapper) Map(m *hl7.Message, ev *sinewv1.Hl7Received, t Tables, out *Result) error {
	out.Commands = out.Commands[:0]
	out.Detail = ""
	mm := mp.lookup(ev.GetMessageType(), ev.GetTriggerEvent())
	if mm == nil {
		out.Detail = fmt.Sprintf("%s^%s is not mapped by flow %s: acknowledged, no command", ev.GetMessageType(), ev.GetTriggerEvent(), mp.Flow)
		return nil
	}
	if mm.shape == Skip {
		out.Detail = fmt.Sprintf("%s^%s carries nothing for Fusion (flow %s): acknowledged, no command", ev.GetMessageType(), ev.GetTriggerEvent(), mp.Flow)
		return nil
	}
	mc := &mapping{mp: mp, mm: mm, m: m, ev: ev, t: t, out: out}
	mc.buf = mc.arr[:0]
	switch mm.shape {
	case ItemMaster, SupplierMaster:
		return mc.master()
	case Provider:
		return mc.provider()
	default:
		return mc.inventory()
	}
}

// mapping is one Map call's state.
type mapping struct {
	mp  *Mapper
	mm  *message
	m   *hl7.Message
	ev  *sinewv1.Hl7Received
	t   Tables
	out *Result
	// recKind and recN name the record being mapped in error texts
	// ("line" 2), formatted only when there is an error.
	recKind string
	recN    int
	buf     []byte // scratch for crosswalk keys
	arr     [128]byte
}

// pathOf is field name's path, or the name when it has none.
func (mc *mapping) pathOf(name string) string {
	if f := mc.mm.f(name); f != nil {
		return f.Path
	}
	return name
}

// lines returns the indexes of the line segments and where each one's group ends.
func (mc *mapping) lines() (idx, end []int) {
	n := mc.m.SegmentCount()
	for i := range n {
		if segIs(mc.m, i, mc.mm.line) {
			idx = append(idx, i)
		}
	}
	end = make([]int, len(idx))
	for k := range idx {
		if k+1 < len(idx) {
			end[k] = idx[k+1]
		} else {
			end[k] = n
		}
	}
	return idx, end
}

func segIs(m *hl7.Message, i int, name string) bool {
	s := m.Segment(i)
	return len(s) >= 3 && string(s[:3]) == name
}

// repOf is the 0-based repetition of segment i among those of its name.
func repOf(m *hl7.Message, i int, name string) int {
	r := 0
	for j := range i {
		if segIs(m, j, name) {
			r++
		}
	}
	return r
}

// value reads field name for the line at segment index line (group up to
// end); line < 0 reads message-level. Escapes and charsets are decoded
// only when present.
func (mc *mapping) value(name string, line, end int) (string, string) {
	f := mc.mm.f(name)
	if f == nil {
		return "", ""
	}
	return mc.read(f, line, end), f.Path
}

// lineFields are read from the line and its group only, never from a
// neighbour: a lot number must not leak from one implant to the next.
// Every field of a master-file record is read that way too.
var lineFields = map[string]bool{"code": true, "quantity": true, "unit": true, "line_id": true, "credit": true, "lot": true, "serial": true}

func (mc *mapping) read(f *field, line, end int) string {
	m := mc.m
	p := f.path
	found := -1
	if line >= 0 {
		if segIs(m, line, p.Segment) {
			found = line
		}
		for j := line + 1; found < 0 && j < end; j++ {
			if segIs(m, j, p.Segment) {
				found = j
			}
		}
		strict := f.lineScoped
		for j := line - 1; found < 0 && !strict && j >= 0; j-- {
			if segIs(m, j, p.Segment) {
				found = j
			}
		}
		if found >= 0 {
			p.SegRep = repOf(m, found, p.Segment)
		} else if strict {
			return f.Default
		}
	}
	v := text(m, p)
	if v == "" {
		v = f.Default
	}
	return v
}

// text is Message.Value without an allocation beyond the string itself
// for plain ASCII values.
func text(m *hl7.Message, p hl7.Path) string {
	if p.Field > 0 && !(p.Segment == "MSH" && p.Field <= 2) {
		p.Component = max(p.Component, 1)
		p.Subcomponent = max(p.Subcomponent, 1)
	}
	b, ok := m.Raw(p)
	if !ok || len(b) == 0 {
		return ""
	}
	esc := m.Delimiters().Escape
	for _, c := range b {
		if c >= 0x80 || (esc != 0 && c == esc) {
			return strings.TrimSpace(m.Value(p))
		}
	}
	return string(bytes.TrimSpace(b))
}

// flag evaluates a flag field: set is false when the field is empty (and
// has no default); an unknown value is an error.
func (mc *mapping) flag(name string, line, end int) (val, set bool, raw string, err error) {
	f := mc.mm.f(name)
	if f == nil {
		return false, false, "", nil
	}
	raw = mc.read(f, line, end)
	if raw == "" {
		if f.Required {
			return false, false, "", mc.fieldErr(name, f.Path, hl7.CodeRequiredField, "", "is empty; it is required and never guessed")
		}
		return false, false, "", nil
	}
	for _, v := range f.True {
		if strings.EqualFold(v, raw) {
			return true, true, raw, nil
		}
	}
	for _, v := range f.False {
		if strings.EqualFold(v, raw) {
			return false, true, raw, nil
		}
	}
	return false, false, raw, mc.fieldErr(name, f.Path, hl7.CodeTableValue, raw, fmt.Sprintf("neither %v nor %v", f.True, f.False))
}

func (mc *mapping) required(name string, line, end int) (string, error) {
	v, path := mc.value(name, line, end)
	if v == "" && mc.mm.f(name) != nil && mc.mm.f(name).Required {
		return "", mc.fieldErr(name, path, hl7.CodeRequiredField, "", "is empty")
	}
	return v, nil
}

func (mc *mapping) envelope(key, sourceID string, extra ...string) *sinewv1.Envelope {
	ev := mc.ev
	bk := sinewv1.KeysOf(append([]string{"control_id", ev.GetControlId(), "facility", ev.GetSendingFacility(),
		"message_type", ev.GetMessageType() + "^" + ev.GetTriggerEvent()}, extra[:len(extra)&^1]...)...)
	return &sinewv1.Envelope{
		EventId: ids.EventID(key), Flow: mc.mp.Flow, SourceSystem: mc.mp.SourceSystem, SourceId: sourceID,
		BusinessKeys: bk, IdempotencyKey: key, ReceivedAt: ev.GetEnvelope().GetReceivedAt(),
		CrosswalkVersion: mc.t.Version(), CausedBy: ev.GetEnvelope().GetEventId(),
	}
}

// PositiveID is a stable positive int64 for a business key, as Fusion's
// SourceHeaderId / SourceLineId: the first 8 bytes of SHA-256(key), top bit
// cleared (0 becomes 1).
func PositiveID(key string) int64 {
	sum := sha256.Sum256([]byte(key))
	v := int64(binary.BigEndian.Uint64(sum[:8]) & 0x7fffffffffffffff)
	if v == 0 {
		v = 1
	}
	return v
}

// line is one mapped inventory line, kept until the whole message mapped.
type invLine struct {
	cmd *sinewv1.InventoryTransaction
	key string
}

func (mc *mapping) inventory() error {
	if mc.t.Items == nil || mc.t.Departments == nil {
		return fmt.Errorf("%w: item and department crosswalks are needed", ErrNoCrosswalk)
	}
	ok, set, raw, err := mc.flag("status", -1, -1)
	if err != nil {
		return err
	}
	if set && !ok {
		// Named by the configured value it matched, not the message's bytes.
		f := mc.mm.f("status")
		for _, v := range f.False {
			if strings.EqualFold(v, raw) {
				raw = v
			}
		}
		mc.out.Detail = fmt.Sprintf("%s^%s status (%s) %s is not complete: acknowledged, no command", mc.ev.GetMessageType(), mc.ev.GetTriggerEvent(), f.Path, raw)
		return nil
	}
	idx, ends := mc.lines()
	var mapped []invLine
	var skipped []string
	msgDate := mc.date("", -1, -1)
	for k, li := range idx {
		end := ends[k]
		mc.recKind, mc.recN = "line", k+1
		code, codePath := mc.value("code", li, end)
		if code == "" {
			return mc.fieldErr("code", codePath, hl7.CodeRequiredField, "", "is empty")
		}
		credit, creditSet, creditRaw, cerr := mc.flag("credit", li, end)
		if cerr != nil {
			skipped = append(skipped, fmt.Sprintf("line %d type (%s, %s)", k+1, mc.pathOf("credit"), mc.mp.describe(creditRaw)))
			continue
		}
		p340b, _, _, err := mc.flag("program_340b", li, end)
		if err != nil {
			return err
		}
		qtyRaw, qtyPath := mc.value("quantity", li, end)
		qty, qerr := decimal.ParsePlain(qtyRaw)
		if qerr != nil {
			return mc.fieldErr("quantity", qtyPath, hl7.CodeDataType, qtyRaw, "is not a decimal")
		}
		if qty.IsZero() {
			skipped = append(skipped, fmt.Sprintf("line %d quantity 0", k+1))
			continue
		}
		header, err := mc.required("header_key", li, end)
		if err != nil {
			return err
		}
		if header == "" {
			return mc.fieldErr("header_key", mc.mm.f("header_key").Path, hl7.CodeRequiredField, "", "is empty: no business key")
		}
		loc, err := mc.required("location", li, end)
		if err != nil {
			return err
		}
		if loc == "" {
			return mc.fieldErr("location", mc.mm.f("location").Path, hl7.CodeRequiredField, "", "is empty: no location")
		}
		item := mc.t.Items.Lookup(mc.buf, []byte(mc.mm.source), []byte(code))
		if item == nil {
			return mc.unmapped(crosswalk.Item, mc.t.Items.Version, mc.mm.source, codePath, code)
		}
		dept := mc.t.Departments.Lookup(mc.buf, []byte(loc))
		if dept == nil {
			return mc.unmapped(crosswalk.Department, mc.t.Departments.Version, "", mc.mm.f("location").Path, loc)
		}
		unit, _ := mc.value("unit", li, end)
		factor, err := mc.factor(unit, item)
		if err != nil {
			return err
		}
		fq, err := qty.Mul(factor)
		if err != nil {
			return mc.fieldErr("quantity", qtyPath, hl7.CodeDataType, qtyRaw, "times the unit factor is not a decimal")
		}
		fq = fq.Normal()
		// Consumption is an issue (negative quantity); a negative dispense
		// or charge, or a credit, puts stock back (a receipt, positive).
		consumed := qty.Sign() > 0
		if credit {
			consumed = !consumed
		}
		txType, value := Issue, fq.Abs().Neg()
		if !consumed {
			txType, value = Receipt, fq.Abs()
		}
		lineID, _ := mc.value("line_id", li, end)
		if lineID == "" {
			lineID = strconv.Itoa(k + 1)
		}
		lot, _ := mc.value("lot", li, end)
		serial, _ := mc.value("serial", li, end)
		headerKey := mc.mm.def.prefix + "-" + header
		key := mc.mp.Flow + ":" + mc.mp.SourceSystem + ":" + headerKey + ":" + lineID
		date := mc.date("date", li, end)
		if date == nil {
			date = msgDate
		}
		cmd := &sinewv1.InventoryTransaction{
			Envelope: mc.envelope(key, header, "line", lineID, "epic_code", code, "program_340b", strconv.FormatBool(p340b),
				"location", loc),
			Organization:    dept.Values[crosswalk.DeptOrganization],
			Subinventory:    dept.Values[crosswalk.DeptSubinventory],
			ItemNumber:      item.Values[crosswalk.ItemFusionItem],
			Quantity:        &sinewv1.Quantity{Value: value.String(), Uom: item.Values[crosswalk.ItemFusionUOM]},
			TransactionType: txType,
			TransactionDate: date,
			SourceHeaderId:  strconv.FormatInt(PositiveID(mc.mp.Flow+":"+mc.mp.SourceSystem+":"+headerKey), 10),
			SourceLineId:    strconv.FormatInt(PositiveID(key), 10),
			Program_340B:    p340b,
			LotNumber:       lot,
			SerialNumber:    serial,
		}
		if creditSet && credit {
			cmd.Reason = "credit"
		}
		mapped = append(mapped, invLine{cmd: cmd, key: key})
	}
	for _, l := range mapped {
		mc.out.Commands = append(mc.out.Commands, Command{Subject: streams.FusionCmdSubject(mc.mp.Flow, OpInventory), MsgID: l.key, Msg: l.cmd})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s^%s as %s: %d inventory command(s)", mc.ev.GetMessageType(), mc.ev.GetTriggerEvent(), mc.mm.shape, len(mapped))
	for _, l := range mapped {
		c := l.cmd
		// Crosswalk values and flags only: the quantity, lot and serial
		// are the message's (they travel in the command, not the audit).
		fmt.Fprintf(&b, "; %s %s %s/%s 340B=%t", c.ItemNumber, c.TransactionType, c.Organization, c.Subinventory, c.Program_340B)
		if c.LotNumber != "" {
			b.WriteString(" with lot")
		}
		if c.SerialNumber != "" {
			b.WriteString(" with serial")
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "; skipped: %s", strings.Join(skipped, ", "))
	}
	fmt.Fprintf(&b, " (crosswalk %s)", mc.t.Version())
	mc.out.Detail = b.String()
	return nil
}

// factor converts the message's unit to the item's Fusion UOM
// (crosswalk.UnitFactor).
func (mc *mapping) factor(unit string, item *crosswalk.Row) (decimal.Decimal, error) {
	if f, ok := crosswalk.UnitFactor(mc.buf, item, mc.t.UOM, unit); ok {
		if f == "1" {
			return "1", nil
		}
		d, _ := decimal.ParsePlain(f) // checked when the crosswalk was loaded
		return d, nil
	}
	fusion := item.Values[crosswalk.ItemFusionUOM]
	version := "(none loaded)"
	if mc.t.UOM != nil {
		version = mc.t.UOM.Version
	}
	path := "unit"
	if f := mc.mm.f("unit"); f != nil {
		path = f.Path
	}
	e := &UnmappedError{Kind: crosswalk.UOM, Version: version, Code: unit + "->" + fusion, Value: mc.mp.describe(unit),
		Source: "item " + item.Values[crosswalk.ItemFusionItem] + ", item crosswalk " + mc.t.Items.Version + ", to " + fusion,
		Path:   path, ControlID: mc.ev.GetControlId(), Flow: mc.mp.Flow}
	return "", e
}

// date reads an HL7 DTM field, then MSH-7; nil when neither parses.
func (mc *mapping) date(name string, line, end int) *timestamppb.Timestamp {
	v := ""
	if name != "" {
		v, _ = mc.value(name, line, end)
	} else {
		v = text(mc.m, hl7.Path{Segment: "MSH", Field: 7})
	}
	if t, ok := hl7.ParseDTM(v); ok {
		return timestamppb.New(t)
	}
	return nil
}

// master maps the MFE records of an MFN.
func (mc *mapping) master() error {
	if mc.mm.shape == ItemMaster && mc.t.Items == nil {
		return fmt.Errorf("%w: the item crosswalk is needed", ErrNoCrosswalk)
	}
	idx, ends := mc.lines()
	var cmds []Command
	var notes []string
	for k, li := range idx {
		end := ends[k]
		mc.recKind, mc.recN = "record", k+1
		code, codePath := mc.value("code", li, end)
		if code == "" {
			return mc.fieldErr("code", codePath, hl7.CodeRequiredField, "", "is empty")
		}
		event, _ := mc.value("event", li, end)
		action := ""
		switch strings.ToUpper(event) {
		case "MAD":
			action = "create"
		case "MUP":
			action = "update"
		case "MAC":
			action = "reactivate"
		case "MDL", "MDC":
			action = "deactivate"
		default:
			notes = append(notes, fmt.Sprintf("record %d event (%s, %s) skipped: not MAD, MUP, MAC, MDL or MDC", k+1, mc.pathOf("event"), mc.mp.describe(event)))
			continue
		}
		stamp, _ := mc.value("entered", li, end)
		if stamp == "" {
			var group []byte
			for j := li; j < end; j++ {
				group = append(append(group, mc.m.Segment(j)...), '\r')
			}
			stamp = "h" + ids.HashKey(string(group))[:16]
		}
		headerKey := mc.mm.def.prefix + "-" + code
		key := mc.mp.Flow + ":" + mc.mp.SourceSystem + ":" + headerKey + ":" + stamp
		text, _ := mc.value("code_text", li, end)
		if mc.mm.shape == ItemMaster {
			row := mc.t.Items.Lookup(mc.buf, []byte(mc.mm.source), []byte(code))
			if row == nil {
				return mc.unmapped(crosswalk.Item, mc.t.Items.Version, mc.mm.source, codePath, code)
			}
			desc, _ := mc.value("description", li, end)
			if desc == "" {
				desc = text
			}
			class, _ := mc.value("item_class", li, end)
			// A flag the record does not carry stays unset: the loader
			// leaves Fusion's value alone (false would switch it off).
			var flags [3]*bool
			for i, name := range []string{"lot_controlled", "serial_controlled", "program_340b"} {
				v, set, _, err := mc.flag(name, li, end)
				if err != nil {
					return err
				}
				if set {
					flags[i] = proto.Bool(v)
				}
			}
			cmd := &sinewv1.ItemUpsert{
				Envelope:   mc.envelope(key, code, "epic_code", code, "action", action),
				ItemNumber: row.Values[crosswalk.ItemFusionItem], Organization: row.Values[crosswalk.ItemOrganization],
				Description: desc, PrimaryUom: row.Values[crosswalk.ItemFusionUOM], ItemClass: class,
				LotControlled: flags[0], SerialControlled: flags[1], Program_340B: flags[2], Action: action,
				Attributes: map[string]string{"epic_code": code, "epic_source": mc.mm.source, "epic_event": strings.ToUpper(event)},
			}
			// A drug's form and strength, where the site's MFN carries them
			// (a reconciliation such as formulary-check compares them).
			for _, name := range []string{"form", "strength"} {
				if v, _ := mc.value(name, li, end); v != "" {
					cmd.Attributes[name] = v
				}
			}
			cmds = append(cmds, Command{Subject: streams.FusionCmdSubject(mc.mp.Flow, OpItem), MsgID: key, Msg: cmd})
			notes = append(notes, fmt.Sprintf("%s %s", action, cmd.ItemNumber))
			continue
		}
		name, _ := mc.value("name", li, end)
		if name == "" {
			name = text
		}
		active, set, _, err := mc.flag("status", li, end)
		if err != nil {
			return err
		}
		status := "ACTIVE"
		if (set && !active) || action == "deactivate" {
			status = "INACTIVE"
		}
		cmd := &sinewv1.SupplierChange{
			Envelope: mc.envelope(key, code, "supplier_number", code, "action", action),
			Origin:   "epic", SupplierNumber: code, Name: name, Status: status, Action: action,
		}
		if site, _ := mc.value("site_code", li, end); site != "" {
			s := &sinewv1.SupplierSite{SiteCode: site}
			s.ProcurementBu, _ = mc.value("procurement_bu", li, end)
			s.AddressLine, _ = mc.value("address_line", li, end)
			s.City, _ = mc.value("city", li, end)
			s.PostalCode, _ = mc.value("postal_code", li, end)
			s.Country, _ = mc.value("country", li, end)
			cmd.Sites = append(cmd.Sites, s)
		}
		cmds = append(cmds, Command{Subject: streams.FusionCmdSubject(mc.mp.Flow, OpSupplier), MsgID: key, Msg: cmd})
		notes = append(notes, fmt.Sprintf("%s supplier %s", action, code))
	}
	mc.out.Commands = append(mc.out.Commands, cmds...)
	mc.out.Detail = fmt.Sprintf("%s^%s as %s: %d command(s): %s", mc.ev.GetMessageType(), mc.ev.GetTriggerEvent(), mc.mm.shape,
		len(cmds), strings.Join(notes, "; "))
	return nil
}

// Event builds the Hl7Received ingest would commit for raw (tests, tools)
// with ingest's own builder (pkg/hl7receipt); the flow is left empty
// (ingest sets it from the sending application's route).
func Event(raw []byte, receivedAt time.Time) (*sinewv1.Hl7Received, *hl7.Message, error) {
	m, err := hl7.Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	body := hl7receipt.BodyHash(m)
	return hl7receipt.New(m, raw, hl7receipt.Receipt{MsgID: hl7receipt.MsgID(m, body), BodySHA256: body, ReceivedAt: receivedAt}), m, nil
}
