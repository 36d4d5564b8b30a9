package loader

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/reason"
	ws "github.com/sinewhq/sinew/pkg/workersync"
)

// dffNames are the provider attributes' names in the assignment DFF.
var dffNames = map[ws.Attr]string{ws.NPI: "npi", ws.Specialty: "specialty", ws.Credentials: "clinicalCredentials", ws.ProviderType: "providerType"}

// loadWorker applies an Epic provider change to Fusion HCM by the flow's
// conflict rules: only the attributes Epic owns are written (a
// date-effective update of the assignment's provider DFF, Effective-Of
// the change's date), and only those whose value Fusion does not already
// hold, so Epic's echo of Sinew's own write changes nothing. Epic's
// changes to attributes Fusion owns lose (named in the audit detail and
// the result) and Fusion's value is sent back to Epic, so both sides end
// on the owner's value whatever the order. Epic's SER id is recorded on the
// worker (the crosswalk link). A provider that matches no worker is not
// Fusion's; one that matches more than one is dead-lettered for a person
// to link (never guessed).
func (s *Service) loadWorker(ctx context.Context, d *bus.Delivery, ev *sinewv1.WorkerChange) error {
	env := ev.GetEnvelope()
	if s.inv == nil {
		return errors.New("loader: flows not configured")
	}
	f, ok := s.inv.Get(env.GetFlow())
	if !ok {
		return bus.Permanent(reason.Wrap(reason.LoaderNoRoute, fmt.Errorf("flow %q is not in flows.yaml", env.GetFlow())))
	}
	rules, err := ws.RulesOf(*f)
	if err != nil {
		return bus.Permanent(err)
	}
	w, err := s.matchWorker(ctx, ev)
	if err != nil {
		return err
	}
	if w == nil {
		d.AuditDetail = "provider " + ev.GetEpicProviderId() + " is no Fusion worker: nothing to update"
		return nil
	}
	cur := ws.FusionValues(*w)
	epicVals := map[ws.Attr]string{}
	for _, a := range ws.Attrs {
		if v, ok := ev.GetAttributes()[string(a)]; ok {
			epicVals[a] = v
		}
	}
	write := ws.Diff(cur, ws.Owned(rules, ws.Epic, epicVals))
	lost := ws.Diff(ws.Owned(rules, ws.Fusion, cur), ws.Owned(rules, ws.Fusion, epicVals))
	dff := map[string]string{}
	for a, v := range write {
		dff[dffNames[a]] = v
	}
	if ser := ev.GetEpicProviderId(); ser != "" && w.EpicProviderID != ser {
		dff["epicProviderId"] = ser
	}
	effective := time.Now().UTC()
	if t := ev.GetEffectiveAt(); t != nil && t.AsTime().After(effective) {
		effective = t.AsTime() // a future-dated change in Epic stays future-dated
	}
	if len(dff) > 0 {
		if err := s.fusion.UpdateProviderAttributes(ctx, *w, effective, dff); err != nil {
			return busError("updateProviderAttributes", err)
		}
	}
	var lostNames []string
	for a := range lost {
		lostNames = append(lostNames, string(a))
	}
	sort.Strings(lostNames)
	if len(lost) > 0 && s.cfg.Epic.Addr != "" {
		// Fusion owns these: Epic is told Fusion's values again.
		if err := s.resendFusionOwned(ctx, ev, w, rules, cur); err != nil {
			return err
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range dff {
			if !yield(k) {
				return
			}
		}
	})
	d.AuditDetail = fmt.Sprintf("worker %s: wrote %s; lost to Fusion (owner): %s", w.PersonNumber, orNone(names), orNone(lostNames))
	return s.result(ctx, env.GetFlow(), "accepted", "fusion:"+env.GetIdempotencyKey(), &sinewv1.LoadResult{
		Envelope: env, Outcome: "accepted", TargetSystem: "fusion.hcm", CompletedAt: timestamppb.Now(), Attempts: int32(d.NumDelivered),
		TargetIds: map[string]string{"person_number": w.PersonNumber, "written": strings.Join(names, ","), "lost": strings.Join(lostNames, ",")},
	})
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

// matchWorker finds the Fusion worker of an Epic provider (pkg/workersync
// MatchProvider): by the person number Epic keeps for it, else by NPI or
// the SER recorded on a worker.
func (s *Service) matchWorker(ctx context.Context, ev *sinewv1.WorkerChange) (*fusion.Worker, error) {
	all, err := s.fusion.Workers(ctx, fusion.WorkerQuery{})
	if err != nil {
		return nil, busError("workers", err)
	}
	ws2 := make([]ws.Worker, len(all))
	for i, w := range all {
		ws2[i] = ws.Worker{PersonNumber: w.PersonNumber, AssignmentNumber: w.AssignmentNumber, NPI: w.NPI, SER: w.EpicProviderID}
	}
	m := ws.MatchProvider(ws.Provider{SER: ev.GetEpicProviderId(), NPI: ev.GetNpi(), PersonNumber: ev.GetPersonNumber()}, ws2)
	switch m.Kind {
	case ws.Matched:
		return &all[m.Index], nil
	case ws.Ambiguous:
		return nil, bus.Permanent(reason.Wrap(reason.WorkerMatchAmbiguous, fmt.Errorf("provider %s: %s", ev.GetEpicProviderId(), m.Why)))
	}
	return nil, nil
}

// resendFusionOwned sends Epic the attributes Fusion owns, as Fusion has
// them, after Epic changed one of them.
func (s *Service) resendFusionOwned(ctx context.Context, ev *sinewv1.WorkerChange, w *fusion.Worker, rules ws.Rules, cur map[ws.Attr]string) error {
	attrs := map[string]string{}
	for a, v := range ws.Owned(rules, ws.Fusion, cur) {
		attrs[string(a)] = v
	}
	ctrl := controlID("r" + ev.GetEnvelope().GetEventId())
	m, err := ws.ProviderMessage(ws.ActionUpdate, w.PersonNumber, ev.GetEpicProviderId(), map[string]string{ws.IDAssignment: w.AssignmentNumber}, attrs, time.Now(),
		mfn.Header{SendingApp: "SINEW", SendingFacility: s.cfg.Epic.Facility, ReceivingApp: s.cfg.Epic.ReceivingApp, ReceivingFacility: s.cfg.Epic.Facility, ControlID: ctrl, Time: time.Now()})
	if err != nil {
		return bus.Permanent(err)
	}
	return s.sendToEpic(ctx, m)
}
