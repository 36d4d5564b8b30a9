package hl7flow

import (
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/streams"
	ws "github.com/sinewhq/sinew/pkg/workersync"
)

// OpWorker is the command operation of a provider change bound for Fusion
// HCM (fusion.cmd.<flow>.worker).
const OpWorker = "worker"

// provider maps Epic's staff / practitioner master record (MFN^M02 with
// STF/PRA, pkg/mfn's layout) to one WorkerChange from Epic: every
// attribute Epic holds, for the loader to apply by the flow's conflict
// rules (only Epic's own win in Fusion; an echo of Sinew's write changes
// nothing).
func (mc *mapping) provider() error {
	m, err := mfn.Read(mc.m)
	if err != nil {
		var fe *mfn.FieldError
		if errors.As(err, &fe) {
			return mc.fieldErr("provider", fe.Path, hl7.CodeRequiredField, "", fe.Why)
		}
		return err
	}
	p := m.Provider
	if p.SER == "" {
		return mc.fieldErr("provider", "STF-2", hl7.CodeRequiredField, "", "has no Epic SER id (^^^EPIC^SER)")
	}
	attrs := map[string]string{ws.IDEMP: p.EMP, ws.IDAssignment: p.AssignmentNumber}
	for a, v := range ws.EpicValues(p) {
		attrs[string(a)] = v
	}
	key := mc.mp.Flow + "/epic/" + p.SER + "/" + mc.ev.GetControlId() + "/" + mc.m.Get("MSH-7")
	ch := &sinewv1.WorkerChange{
		Envelope: mc.envelope(key, p.SER, "provider", p.SER),
		Origin:   string(ws.Epic), PersonNumber: p.PersonNumber, EpicProviderId: p.SER, Npi: p.NPI,
		Action: ws.ActionUpdate, Attributes: attrs,
	}
	if !m.Effective.IsZero() {
		ch.EffectiveAt = timestamppb.New(m.Effective)
	}
	mc.out.Commands = append(mc.out.Commands, Command{Subject: streams.FusionCmdSubject(mc.mp.Flow, OpWorker), MsgID: key, Msg: ch})
	mc.out.Detail = "provider " + p.SER + " (" + m.Event + ")"
	return nil
}
