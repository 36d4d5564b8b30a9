package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// ReconcileEpicAck reconciles a Fusion-to-Epic flow (reconcile.kind
// epic-ack) as of now and publishes its rows, scoped to today: Fusion's
// current records (the flow's registry Current) against the versions Epic
// acknowledged, read from the flow's accepted results on RESULTS. A
// record changed within ReadLag may not be sent yet: pending, not a
// variance.
func (s *Service) ReconcileEpicAck(ctx context.Context, flow string) error {
	f, ok := s.flows.Get(flow)
	if !ok || f.Reconcile.Kind != flows.ReconcileEpicAck || f.Entry.Current == nil {
		return fmt.Errorf("flow %s is not reconciled by Epic's acknowledgements", flow)
	}
	recs, err := f.Entry.Current(ctx, f.Flow, s.fusion)
	if err != nil {
		return fmt.Errorf("reading Fusion's current records: %w", err)
	}
	in := &recon.AckInput{Scope: time.Now().UTC().Format(time.DateOnly), Acked: map[string]map[string]bool{}}
	err = streams.Scan(ctx, s.bus.JetStream(), streams.Results, "result."+streams.Token(flow)+".accepted", time.Time{}, func(m jetstream.Msg) error {
		var r sinewv1.LoadResult
		if proto.Unmarshal(m.Data(), &r) != nil {
			return nil
		}
		env := r.GetEnvelope()
		if len(env.GetBusinessKeys()) == 0 {
			return nil
		}
		k := env.GetBusinessKeys()[0].GetValue()
		if in.Acked[k] == nil {
			in.Acked[k] = map[string]bool{}
		}
		v := env.GetIdempotencyKey()
		if st := sinewv1.KeyMap(env.GetBusinessKeys())[registry.StateKey]; st != "" {
			v = st
		}
		in.Acked[k][v] = true
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		in.Fusion = append(in.Fusion, recon.AckRecord{Key: r.Key, Version: r.Version, Skip: r.Skip, Recent: time.Since(r.Updated) < s.cfg.ReadLag})
	}
	return s.publish(ctx, flow, recon.ReconcileEpicAck(in))
}
