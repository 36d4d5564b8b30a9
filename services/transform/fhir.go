package transform

import (
	"context"
	"errors"
	"fmt"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// fhirWorkers handle one FHIR flow's resources concurrently.
const fhirWorkers = 4

// newFHIR builds the FHIR handling of every flow of inv with intake.fhir
// whose registry entry has NewFHIR. A flow that cannot be built is left
// off with a warning: its consumer is not run, its resources wait in FHIR_IN.
func (s *Service) newFHIR(ctx context.Context, inv *flows.Inventory, env registry.Env) {
	for i := range inv.Flows {
		f := &inv.Flows[i]
		if len(f.Intake.FHIR) == 0 {
			continue
		}
		e, ok := s.reg.Lookup(f.ID)
		if !ok || e.NewFHIR == nil {
			continue
		}
		h, err := e.NewFHIR(ctx, f, env)
		if err != nil {
			s.bus.Logger().Warn().Err(err).Str("flow", f.ID).Msg("FHIR flow not configured: its resources wait in FHIR_IN")
			s.unbuilt = append(s.unbuilt, f.ID)
			continue
		}
		s.fhirs[f.ID] = h
	}
}

// fhirLoops are the FHIR_IN consumers: the shared one dead-letters what
// ingest could not read (fhir.in.invalid), and each FHIR flow's own
// consumer (paused while the flow is staged or paused) hands its
// resources to the flow.
func (s *Service) fhirLoops(ctx context.Context, topo streams.Topology, provisioned func(streams.Consumer) bool) []bus.Loop {
	var loops []bus.Loop
	consume := func(c streams.Consumer, h bus.Handler) bus.Loop {
		return func(ctx context.Context, ready func()) error {
			return s.bus.Consume(ctx, c, h, bus.ConsumeOptions{Workers: fhirWorkers, Ready: ready})
		}
	}
	if c, ok := topo.Consumer(streams.TransformFHIR); ok && provisioned(c) {
		loops = append(loops, consume(c, bus.Proto(unreadableFHIR)))
	}
	for _, f := range s.cfg.Topology.FHIRFlows {
		c, ok := topo.Consumer(streams.TransformFHIRFlow(f.ID))
		if !ok || !provisioned(c) {
			continue
		}
		h, built := s.fhirs[f.ID]
		if !built && s.isUnbuilt(f.ID) {
			continue // warned in New: its resources wait
		}
		loops = append(loops, consume(c, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
			if h == nil {
				return bus.Permanent(reason.Wrap(reason.TransformNoMapper, fmt.Errorf("no FHIR mapper for flow %q (%s)", f.ID, ev.GetResourceType())))
			}
			return h.Resource(ctx, d, ev)
		})))
	}
	return loops
}

// unreadableFHIR dead-letters a resource ingest could not read: the dead
// letter's payload is the event, which keeps the resource's original
// bytes; the reason is ingest's error (path and code, never a value).
func unreadableFHIR(_ context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	why := ev.GetEnvelope().BusinessKey("error")
	if why == "" {
		why = "unreadable resource"
	}
	return bus.Permanent(reason.Wrap(reason.FHIRResourceUnreadable, errors.New(why)))
}

func (s *Service) isUnbuilt(id string) bool {
	for _, u := range s.unbuilt {
		if u == id {
			return true
		}
	}
	return false
}
