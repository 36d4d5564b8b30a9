package transform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// rejectedHeader marks a message ingest kept in HL7_IN although it rejected
// it (ingest.RejectedHeader): it is dead-lettered here for review.
const rejectedHeader = "sinew-rejected"

// hl7Route is one real-time HL7 flow.
type hl7Route struct {
	flow   *flows.Flow
	mapper *hl7flow.Mapper
}

// hl7Side is the transform's HL7 half: routes by sending application, the
// live crosswalks, and a pool of parsed messages.
type hl7Side struct {
	byApp    map[string]*hl7Route
	st       *crosswalk.Store
	items    *crosswalk.Live
	depts    *crosswalk.Live
	uom      *crosswalk.Live
	messages sync.Pool // of *hl7.Message, reused by ParseInto
}

// newHL7Side compiles the HL7 flows of the inventory and loads the demo
// code crosswalks into KV when KV has none yet (a first start).
func newHL7Side(ctx context.Context, cfg Config, st *crosswalk.Store, reg *registry.Registry) (*hl7Side, error) {
	inv, err := flows.Load(cfg.FlowsFile)
	if err != nil {
		return nil, err
	}
	h := &hl7Side{byApp: map[string]*hl7Route{}, st: st, messages: sync.Pool{New: func() any { return new(hl7.Message) }}}
	for i := range inv.Flows {
		f := &inv.Flows[i]
		if f.HL7 == nil {
			continue
		}
		newMapper := hl7flow.New // the shared shapes: a declarative flow needs no package
		if e, ok := reg.Lookup(f.ID); ok && e.NewHL7 != nil {
			newMapper = e.NewHL7
		}
		mp, err := newMapper(f)
		if err != nil {
			return nil, err
		}
		mp.Secret = []byte(cfg.Audit.Secret) // error texts name field values by keyed hash
		r := &hl7Route{flow: f, mapper: mp}
		for _, app := range f.HL7.SendingApplications {
			h.byApp[app] = r
		}
	}
	if len(h.byApp) == 0 {
		return nil, fmt.Errorf("%s has no flow with hl7 settings", cfg.FlowsFile)
	}
	for kind, file := range map[string]string{crosswalk.Item: cfg.ItemCrosswalk, crosswalk.Department: cfg.DepartmentCrosswalk, crosswalk.UOM: cfg.UOMCrosswalk} {
		if file == "" {
			continue
		}
		if _, err := st.CurrentVersion(ctx, kind); !errors.Is(err, crosswalk.ErrNoVersion) {
			if err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("no %s crosswalk in KV and %w", kind, err)
		}
		if _, err := st.LoadCodes(ctx, kind, data, ""); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// follow starts following the current crosswalks until ctx ends.
func (h *hl7Side) follow(ctx context.Context) error {
	var err error
	if h.items, err = h.st.Live(ctx, crosswalk.Item); err != nil {
		return err
	}
	if h.depts, err = h.st.Live(ctx, crosswalk.Department); err != nil {
		return err
	}
	h.uom, err = h.st.Live(ctx, crosswalk.UOM)
	return err
}

func (h *hl7Side) tables() hl7flow.Tables {
	return hl7flow.Tables{Items: h.items.Get(), Departments: h.depts.Get(), UOM: h.uom.Get()}
}

// refresh reads the current pointers from KV; it reports whether any
// version changed since t.
func (h *hl7Side) refresh(ctx context.Context, t hl7flow.Tables) (hl7flow.Tables, bool) {
	changed := false
	for _, p := range []struct {
		live *crosswalk.Live
		was  *crosswalk.Codes
	}{{h.items, t.Items}, {h.depts, t.Departments}, {h.uom, t.UOM}} {
		now, err := p.live.Refresh(ctx)
		if err == nil && (p.was == nil || now.Version != p.was.Version) {
			changed = true
		}
	}
	return h.tables(), changed
}

// hl7 maps one HL7_IN message: route by MSH-3 to a flow, parse, map with
// the current crosswalks, publish the commands (message id = idempotency
// key, so a resend of the same business event is stored once).
func (s *Service) hl7(ctx context.Context, d *bus.Delivery, ev *sinewv1.Hl7Received) error {
	if why := d.Header.Get(rejectedHeader); why != "" {
		code := reason.Code(d.Header.Get(reason.Header))
		if _, ok := reason.Lookup(code); !ok {
			code = reason.IngestRejected
		}
		return bus.Permanent(reason.Wrap(code, fmt.Errorf("rejected at ingest (%s), control id %q: kept for review", why, ev.GetControlId())))
	}
	if err := s.hl7Body(ctx, ev); err != nil {
		return err
	}
	h := s.hl7s
	route := h.byApp[ev.GetSendingApplication()]
	if route == nil {
		d.AuditDetail = fmt.Sprintf("no HL7 flow for sending application %q (%s^%s): acknowledged, not mapped",
			ev.GetSendingApplication(), ev.GetMessageType(), ev.GetTriggerEvent())
		return nil
	}
	if ev.Envelope != nil {
		ev.Envelope.Flow = route.flow.ID // audit and dead letters under the flow
	}
	// A message on its flow's own subjects is here because the flow's
	// consumer is running (flowstate): the flow is active. One on the
	// default subjects (stored before ingest routed by flow) still obeys
	// flows.yaml's state.
	if !strings.HasSuffix(d.Subject, "."+route.flow.ID) && route.flow.State != flows.Active {
		d.AuditDetail = fmt.Sprintf("flow %s is %s: %s^%s control id %s acknowledged, not mapped",
			route.flow.ID, route.flow.State, ev.GetMessageType(), ev.GetTriggerEvent(), ev.GetControlId())
		return nil
	}
	m := h.messages.Get().(*hl7.Message)
	defer h.messages.Put(m)
	if err := (hl7.Options{Charset: ev.GetCharset()}).ParseInto(m, ev.GetRaw()); err != nil {
		return bus.Permanent(fmt.Errorf("parse control id %q: %w", ev.GetControlId(), err))
	}
	t := h.tables()
	var res hl7flow.Result
	err := route.mapper.Map(m, ev, t, &res)
	var unmapped *hl7flow.UnmappedError
	if errors.As(err, &unmapped) || errors.Is(err, hl7flow.ErrNoCrosswalk) {
		// Never dead-letter against a table that was just replaced: read
		// the current versions from KV and map again if one changed.
		if t2, changed := h.refresh(ctx, t); changed {
			err = route.mapper.Map(m, ev, t2, &res)
		}
	}
	if err != nil {
		return err
	}
	for _, c := range res.Commands {
		if _, err := s.bus.Publish(ctx, c.Subject, c.MsgID, c.Msg); err != nil {
			return err // retried; the commands already stored are deduplicated by id
		}
	}
	d.AuditDetail = "control id " + ev.GetControlId() + ": " + res.Detail
	return nil
}
