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
	"strconv"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
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

// NewPoller builds the flow's poller: suppliers changed since the cursor
// (supplier-sync.cursor.suppliers), each a SupplierChange on EPIC_CMD.
func NewPoller(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Poller, error) {
	return registry.NewCursorPoller(ctx, f, env, registry.Cursor[fusion.Supplier]{Feed: "suppliers", Read: (*fusion.Client).SuppliersUpdatedAfter, Change: change})
}

// change is a supplier's command.
func change(f *flows.Flow, s fusion.Supplier) registry.Change {
	id := version(f.ID, s)
	ev := &sinewv1.SupplierChange{
		Envelope: registry.Envelope(f, id, s.SupplierNumber, "supplier_number", s.SupplierNumber),
		Origin:   "fusion", SupplierNumber: s.SupplierNumber, Name: s.Name, Status: s.Status, Action: "upsert",
	}
	for _, st := range s.Sites {
		ev.Sites = append(ev.Sites, &sinewv1.SupplierSite{SiteCode: st.Site, ProcurementBu: st.ProcurementBU, AddressLine: st.AddressLine1,
			City: st.City, PostalCode: st.PostalCode, Country: st.Country})
	}
	return registry.Change{Subject: streams.EpicCmdSubject(f.ID, Op), MsgID: id, Msg: ev, At: s.LastUpdate}
}
