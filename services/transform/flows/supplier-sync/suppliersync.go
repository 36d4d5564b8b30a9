// Package suppliersync is the supplier-sync flow: Fusion's supplier
// master, read incrementally (suppliers with their sites, by
// LastUpdateDate), to Epic's Willow and Beaker supplier reference. Each
// changed supplier is a SupplierChange on EPIC_CMD, which the loader sends
// to Epic as an MFN^M01 record (pkg/mfn) over MLLP, its ACK checked.
// Like worker-sync's, the poller runs in transform (the grant to publish
// EPIC_CMD and the fusion_poll bucket are there).
package suppliersync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is this flow's id in flows.yaml.
const Flow = "supplier-sync"

// Op is the EPIC_CMD operation (epic.cmd.<flow>.supplier).
const Op = "supplier"

// Entry registers the flow.
func Entry() registry.Entry { return registry.Entry{ID: Flow, NewPoller: NewPoller, Current: Current} }

// version is the idempotency key of a supplier's state: its number and
// Fusion's LastUpdateDate.
func version(flow string, s fusion.Supplier) string {
	return flow + "/fusion/" + s.SupplierNumber + "/" + strconv.FormatInt(s.LastUpdate.UnixNano(), 10)
}

// Current is Fusion's active suppliers, each at its latest version, for
// the reconciler: Epic's supplier reference should hold each as sent.
func Current(ctx context.Context, f *flows.Flow, fc *fusion.Client) ([]registry.Record, error) {
	sups, err := fc.SuppliersUpdatedAfter(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	var out []registry.Record
	for _, s := range sups {
		if s.Status != "ACTIVE" {
			continue
		}
		out = append(out, registry.Record{Key: s.SupplierNumber, Version: version(f.ID, s), Updated: s.LastUpdate})
	}
	return out, nil
}

// Poller reads Fusion's supplier master for one flow.
type Poller struct {
	flow     *flows.Flow
	fusion   *fusion.Client
	pub      registry.Publisher
	kv       jetstream.KeyValue
	states   *flowstate.Store
	interval time.Duration
	log      func(error, string)
}

// NewPoller builds the poller.
func NewPoller(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Poller, error) {
	if env.Fusion == nil {
		return nil, errors.New("supplier-sync: no Fusion client configured")
	}
	kv, err := env.JS.KeyValue(ctx, streams.KVFusionPoll)
	if err != nil {
		return nil, fmt.Errorf("supplier-sync: bucket %s: %w", streams.KVFusionPoll, err)
	}
	st, err := flowstate.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	return &Poller{flow: f, fusion: env.Fusion, pub: env.Publisher, kv: kv, states: st, interval: env.PollInterval, log: env.Log}, nil
}

// Run polls every interval while the flow is active, until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	return registry.PollLoop(ctx, p.flow, p.states, p.interval, p.log, p.Poll)
}

// Poll publishes every supplier changed since the cursor, oldest first;
// the cursor moves past a supplier once its change is on EPIC_CMD.
func (p *Poller) Poll(ctx context.Context) error {
	key := p.flow.ID + ".cursor.suppliers"
	var since time.Time
	if e, err := p.kv.Get(ctx, key); err == nil {
		since, _ = time.Parse(time.RFC3339Nano, string(e.Value()))
	}
	sups, err := p.fusion.SuppliersUpdatedAfter(ctx, since)
	if err != nil {
		return err
	}
	for _, s := range sups {
		id := version(p.flow.ID, s)
		ev := &sinewv1.SupplierChange{
			Envelope: &sinewv1.Envelope{EventId: ids.EventID(id), Flow: p.flow.ID, SourceSystem: p.flow.Source, SourceId: s.SupplierNumber,
				IdempotencyKey: id, ReceivedAt: timestamppb.Now(), BusinessKeys: []*sinewv1.KeyValue{{Key: "supplier_number", Value: s.SupplierNumber}}},
			Origin: "fusion", SupplierNumber: s.SupplierNumber, Name: s.Name, Status: s.Status, Action: "upsert",
		}
		for _, st := range s.Sites {
			ev.Sites = append(ev.Sites, &sinewv1.SupplierSite{SiteCode: st.Site, ProcurementBu: st.ProcurementBU, AddressLine: st.AddressLine1,
				City: st.City, PostalCode: st.PostalCode, Country: st.Country})
		}
		if _, err := p.pub.Publish(ctx, streams.EpicCmdSubject(p.flow.ID, Op), id, ev); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		// A supplier without a LastUpdateDate (loaded before Fusion kept
		// one) moves the cursor to the epoch: it is sent once, like the rest.
		at := s.LastUpdate.UTC()
		for _, t := range []time.Time{time.Unix(0, 0).UTC(), since} {
			if t.After(at) {
				at = t
			}
		}
		if _, err := p.kv.Put(ctx, key, []byte(at.Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
		since = at
	}
	return nil
}
