package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

// onhandSource is the item crosswalk's source of the counted codes.
const onhandSource = "reagent"

// countFile is a count file read from the object store.
type countFile struct {
	name, sha string
	day       string    // the count's date: the scope's first part
	at        time.Time // the moment the count stands for
	rows      []recon.CountRow
	err       error // the file could not be read as a count
}

// runOnhand reconciles the latest count against Fusion's on-hand every
// OnhandEvery, as soon as a new count manifest is on BATCH_IN, and again
// every poll while the last result was pending, until ctx ends.
func (s *Service) runOnhand(ctx context.Context) {
	if s.cfg.OnhandEvery <= 0 {
		return
	}
	tick := time.NewTicker(s.cfg.OnhandEvery)
	defer tick.Stop()
	poll := time.NewTicker(max(s.cfg.PollInterval, time.Second))
	defer poll.Stop()
	var seen uint64
	pending := false
	for {
		due := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			due = true
		case <-poll.C:
			// A new manifest is a new count: compare it now, not at the next tick.
			seq, err := s.lastCountSeq(ctx)
			if err != nil && ctx.Err() == nil {
				s.bus.Logger().Warn().Err(err).Msg("on-hand reconciliation: reading BATCH_IN")
			}
			due = pending || seq != seen
			seen = seq
		}
		if !due {
			continue
		}
		res, err := s.ReconcileOnhand(ctx, time.Now())
		if err != nil {
			if ctx.Err() == nil {
				s.bus.Logger().Warn().Err(err).Str("flow", s.onhandFlow).Msg("on-hand reconciliation")
			}
			pending = true // try again at the next poll
			continue
		}
		pending = res != nil && res.Summary.Verdict == recon.VerdictPending
	}
}

// lastCountSeq is the stream sequence of the latest count manifest, 0
// when there is none.
func (s *Service) lastCountSeq(ctx context.Context) (uint64, error) {
	st, err := s.bus.JetStream().Stream(ctx, streams.BatchIn)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", streams.BatchIn, err)
	}
	m, err := st.GetLastMsgForSubject(ctx, streams.BatchSubject(s.onhandFlow))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last count manifest: %w", err)
	}
	return m.Sequence, nil
}

// ReconcileOnhand reconciles the latest count file of the latest counted
// day (manifests of the last two days on BATCH_IN) against Fusion's
// on-hand, rolled back to the moment of the count, and publishes the rows
// under "<count_date>/onhand". It returns nil, nil when there is no count.
func (s *Service) ReconcileOnhand(ctx context.Context, now time.Time) (*recon.Result, error) {
	flow, ok := s.inv.Get(s.onhandFlow)
	if !ok {
		return nil, fmt.Errorf("flow %s not in %s", s.onhandFlow, s.cfg.FlowsFile)
	}
	tol, err := recon.ParseTolerance(flow.Tolerances)
	if err != nil {
		return nil, err
	}
	cf, err := s.latestCount(ctx, now)
	if err != nil || cf == nil {
		return nil, err
	}
	in := &recon.OnhandInput{Scope: cf.day + recon.OnhandScopeSuffix, File: cf.name, Tolerance: tol,
		Final: now.Sub(cf.at) > s.cfg.ReadLag}
	if cf.err != nil {
		in.Count = []recon.OnhandCount{{Line: 1, Code: "-", Department: "-", Problem: cf.err.Error()}}
	} else if err := s.mapCount(ctx, cf, in); err != nil {
		return nil, err
	}
	if err := s.readOnhand(ctx, cf.at, in); err != nil {
		return nil, err
	}
	res := recon.ReconcileOnhand(in)
	if err := s.publish(ctx, s.onhandFlow, res); err != nil {
		return nil, err
	}
	s.bus.Logger().Info().Str("flow", s.onhandFlow).Str("scope", in.Scope).Str("file", cf.name).Str("verdict", res.Summary.Verdict).
		Msg("on-hand reconciled: " + res.Summary.Explain())
	return res, nil
}

// latestCount reads the count manifests of the last two days and returns
// the latest file of the latest counted day, nil when there is none.
func (s *Service) latestCount(ctx context.Context, now time.Time) (*countFile, error) {
	js := s.bus.JetStream()
	var manifests []*sinewv1.BatchManifest
	err := streams.Scan(ctx, js, streams.BatchIn, streams.BatchSubject(s.onhandFlow), now.Add(-48*time.Hour), func(m jetstream.Msg) error {
		var bm sinewv1.BatchManifest
		if proto.Unmarshal(m.Data(), &bm) == nil && len(bm.GetSha256()) == 64 {
			manifests = append(manifests, &bm)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(manifests) == 0 {
		return nil, nil
	}
	files, err := js.ObjectStore(ctx, streams.ObjBatchFiles)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", streams.ObjBatchFiles, err)
	}
	// Stream order is arrival order: a later file of the same day replaces
	// an earlier one (a recount), a later day replaces an earlier day.
	s.countsMu.Lock()
	defer s.countsMu.Unlock()
	var latest *countFile
	keep := make(map[string]*countFile, len(manifests))
	for _, bm := range manifests {
		cf, ok := s.counts[bm.GetSha256()]
		if !ok {
			if cf, err = readCount(ctx, files, bm); err != nil {
				return nil, err
			}
		}
		keep[bm.GetSha256()] = cf
		if latest == nil || cf.day >= latest.day {
			latest = cf
		}
	}
	s.counts = keep // files older than the window are forgotten
	return latest, nil
}

// readCount reads one count file from the object store. A file that is
// not a count is returned with err set: it is reported, not retried.
func readCount(ctx context.Context, files jetstream.ObjectStore, bm *sinewv1.BatchManifest) (*countFile, error) {
	cf := &countFile{name: bm.GetFileName(), sha: bm.GetSha256()}
	received := bm.GetEnvelope().GetReceivedAt().AsTime().UTC()
	cf.day, cf.at = received.Format(time.DateOnly), received
	data, err := files.GetBytes(ctx, bm.GetObjectKey())
	if err != nil {
		return nil, fmt.Errorf("count file %s (%s): %w", cf.name, bm.GetObjectKey(), err)
	}
	if cf.rows, cf.err = recon.ParseOnhandCount(bytes.NewReader(data)); cf.err != nil {
		return cf, nil
	}
	for _, r := range cf.rows {
		if day, at, err := recon.CountTime(r.CountDate); err == nil {
			cf.day, cf.at = day, at // the first row's date is the file's
			break
		}
	}
	return cf, nil
}

// mapCount maps every count row with the current item, department and uom
// crosswalks: reagent code → Fusion item and unit factor, department →
// organization and subinventory.
func (s *Service) mapCount(ctx context.Context, cf *countFile, in *recon.OnhandInput) error {
	items, err := s.codes(ctx, crosswalk.Item)
	if err != nil {
		return err
	}
	depts, err := s.codes(ctx, crosswalk.Department)
	if err != nil {
		return err
	}
	uoms, err := s.codes(ctx, crosswalk.UOM)
	if err != nil {
		return err
	}
	if items != nil {
		in.Countable = map[string]bool{}
		for _, r := range items.Rows() {
			if r.Values[crosswalk.ItemSource] == onhandSource {
				in.Countable[r.Values[crosswalk.ItemFusionItem]] = true
			}
		}
	}
	for _, r := range cf.rows {
		c := recon.OnhandCount{Line: r.Line, Code: r.Code, Department: r.Department, EpicQty: r.Qty, EpicUnit: r.Unit}
		c.Problem = mapCountRow(&c, r, cf.day, items, depts, uoms)
		in.Count = append(in.Count, c)
	}
	return nil
}

// mapCountRow fills c's Fusion side from r and returns why it cannot be
// mapped ("" when it is).
func mapCountRow(c *recon.OnhandCount, r recon.CountRow, day string, items, depts, uoms *crosswalk.Codes) string {
	if d, _, err := recon.CountTime(r.CountDate); err != nil {
		return err.Error()
	} else if d != day {
		return fmt.Sprintf("count_date %s is not the file's (%s)", r.CountDate, day)
	}
	if r.Code == "" || r.Department == "" {
		return "row without a reagent code or department"
	}
	q, err := recon.ParseQty(r.Qty)
	if err != nil {
		return fmt.Sprintf("quantity %q is not a decimal with at most four places", r.Qty)
	}
	if items == nil {
		return "no item crosswalk loaded"
	}
	item := items.LookupString(onhandSource, r.Code)
	if item == nil {
		return fmt.Sprintf("unmapped reagent code %s: no item crosswalk row (version %s)", r.Code, items.Version)
	}
	if depts == nil {
		return "no department crosswalk loaded"
	}
	dept := depts.LookupString(r.Department)
	if dept == nil {
		return fmt.Sprintf("unmapped department %s: no department crosswalk row (version %s)", r.Department, depts.Version)
	}
	fusionUOM := item.Values[crosswalk.ItemFusionUOM]
	factor, ok := crosswalk.UnitFactor(nil, item, uoms, r.Unit)
	if !ok {
		return fmt.Sprintf("unit %s does not convert to %s (item %s)", r.Unit, fusionUOM, item.Values[crosswalk.ItemFusionItem])
	}
	if c.Quantity, err = recon.ConvertQty(q, factor); err != nil {
		return err.Error()
	}
	c.Organization, c.Subinventory = dept.Values[crosswalk.DeptOrganization], dept.Values[crosswalk.DeptSubinventory]
	c.Item, c.UOM = item.Values[crosswalk.ItemFusionItem], fusionUOM
	return ""
}

// codes is the current table of a code-table kind, nil when none is loaded.
func (s *Service) codes(ctx context.Context, kind string) (*crosswalk.Codes, error) {
	c, err := s.xw.CurrentCodes(ctx, kind)
	if errors.Is(err, crosswalk.ErrNoVersion) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s crosswalk: %w", kind, err)
	}
	return c, nil
}

// readOnhand reads Fusion's on-hand of every organization the count names
// and rolls back the transactions Fusion holds dated at or after the
// count's moment, so both sides stand at the same time.
func (s *Service) readOnhand(ctx context.Context, at time.Time, in *recon.OnhandInput) error {
	orgs := map[string]bool{}
	for _, c := range in.Count {
		if c.Problem == "" && !orgs[c.Organization] {
			orgs[c.Organization] = true
			if err := s.readOrgOnhand(ctx, c.Organization, at, in); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) readOrgOnhand(ctx context.Context, org string, at time.Time, in *recon.OnhandInput) error {
	bal, err := s.fusion.OnhandQuantities(ctx, org, "")
	if err != nil {
		return fmt.Errorf("inventoryOnhandBalances %s: %w", org, err)
	}
	type key struct{ sub, item string }
	idx := map[key]int{}
	for _, b := range bal {
		q, err := fusionQty(b.Quantity)
		if err != nil {
			return fmt.Errorf("inventoryOnhandBalances %s %s %s: %w", org, b.Subinventory, b.ItemNumber, err)
		}
		idx[key{b.Subinventory, b.ItemNumber}] = len(in.Fusion)
		in.Fusion = append(in.Fusion, recon.OnhandBalance{Organization: org, Subinventory: b.Subinventory, Item: b.ItemNumber, UOM: b.UOM, Quantity: q})
	}
	later, err := s.fusion.InventoryTransactions(ctx, fusion.InventoryQuery{Organization: org, From: at})
	if err != nil {
		return fmt.Errorf("inventoryStagedTransactions %s since %s: %w", org, at.Format(time.RFC3339), err)
	}
	for _, t := range later {
		if t.ProcessFlag == fusion.ProcessFlagError {
			continue // never touched on-hand
		}
		q, err := fusionQty(t.TransactionQuantity)
		if err != nil {
			return fmt.Errorf("inventoryStagedTransactions %d: %w", t.TransactionInterfaceID, err)
		}
		k := key{t.SubinventoryCode, t.ItemNumber}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(in.Fusion)
			i = len(in.Fusion)
			in.Fusion = append(in.Fusion, recon.OnhandBalance{Organization: org, Subinventory: k.sub, Item: k.item, UOM: t.TransactionUnitOfMeasure})
		}
		in.Fusion[i].Quantity -= q
	}
	return nil
}

// fusionQty reads one of Fusion's decimals as a quantity: trailing
// fractional zeros ("995.000") are not precision.
func fusionQty(d fusion.Decimal) (recon.Qty, error) {
	s := string(d)
	if strings.Contains(s, ".") {
		s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	}
	return recon.ParseQty(s)
}
