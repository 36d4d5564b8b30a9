// Package fhircheck is what the FHIR reconciliations (optime-encounters,
// beaker-expected-use) share: the consistent cut that keeps live traffic
// from raising variances, and the postings of the HL7 flows they compare
// with (each command on FUSION_CMD with what Fusion answered on RESULTS).
package fhircheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

// Watermark is how far ingest's paged search of typ has committed
// everything (KV fhir_watermarks, key search.<type>, written by
// services/ingest after a whole window is on FHIR_IN); ok is false
// before the first complete sync.
func Watermark(ctx context.Context, js jetstream.JetStream, typ string) (time.Time, bool, error) {
	kv, err := js.KeyValue(ctx, streams.KVWatermarks)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("bucket %s: %w", streams.KVWatermarks, err)
	}
	e, err := kv.Get(ctx, "search."+typ)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("watermark of %s: %w", typ, err)
	}
	var wm struct {
		Through time.Time `json:"through"`
	}
	if err := json.Unmarshal(e.Value(), &wm); err != nil || wm.Through.IsZero() {
		return time.Time{}, false, nil
	}
	return wm.Through.UTC(), true, nil
}

// Cut is the moment a check of day compares up to: the earliest of the
// day's end, the watermark of the FHIR side (everything Epic dated before
// it is on FHIR_IN) and now less grace (HL7 messages dated before it are
// mapped and posted). Records dated at or after the cut are the next
// run's, on both sides.
func Cut(day, watermark, now time.Time, grace time.Duration) time.Time {
	cut := day.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if watermark.Before(cut) {
		cut = watermark
	}
	if n := now.Add(-grace); n.Before(cut) {
		cut = n
	}
	return cut.UTC()
}

// DayCut is what a check of the day containing day compares: the day
// (UTC midnight) and its Cut for the FHIR type typ, now defaulting to
// the clock. ok is false while there is nothing to compare yet: before
// the first complete sync of typ, or while the cut is still at the
// day's start.
func DayCut(ctx context.Context, js jetstream.JetStream, typ string, day, now time.Time, grace time.Duration) (start, cut time.Time, ok bool, err error) {
	if now.IsZero() {
		now = time.Now().UTC()
	}
	start = day.UTC().Truncate(24 * time.Hour)
	wm, ok, err := Watermark(ctx, js, typ)
	if err != nil || !ok {
		return start, time.Time{}, false, err
	}
	cut = Cut(start, wm, now, grace)
	return start, cut, cut.After(start), nil
}

// ShapeFlows are the HL7 flows mapping some message with the given
// shape (hl7flow.Case, hl7flow.Reagent), found by their settings in
// flows.yaml rather than by id.
func ShapeFlows(inv *flows.Inventory, shape string) []string {
	var out []string
	for _, f := range inv.Flows {
		if f.HL7 == nil {
			continue
		}
		for _, m := range f.HL7.Messages {
			if m.Shape == shape {
				out = append(out, f.ID)
				break
			}
		}
	}
	return out
}

// Posting is one inventory command of an HL7 flow and its outcome.
type Posting struct {
	Flow string
	// Key is the command's idempotency key.
	Key string
	// SourceID is the header business id: the OpTime case id, the Beaker
	// accession.
	SourceID string
	// Code is the Epic code of the line (business key epic_code: the
	// supply or reagent code).
	Code     string
	Item     string
	Quantity recon.Qty // Fusion's unit, negative for an issue
	UOM      string
	Lot      string
	Serial   string
	Date     time.Time // the transaction's date
	// Outcome is the latest result's (accepted, rejected, ...), "" while
	// the loader has not answered.
	Outcome string
}

// Accepted reports whether Fusion took the posting.
func (p Posting) Accepted() bool { return p.Outcome == "accepted" }

// Postings reads flow's inventory commands stored since, and their
// results: one Posting per idempotency key (a replayed command's later
// outcome wins). A command that cannot be read is skipped (it was
// dead-lettered where it failed).
func Postings(ctx context.Context, js jetstream.JetStream, flow string, since time.Time) ([]Posting, error) {
	var out []Posting
	at := map[string]int{}
	err := streams.Scan(ctx, js, streams.FusionCmd, streams.FusionCmdSubject(flow, hl7flow.OpInventory), since, func(m jetstream.Msg) error {
		var c sinewv1.InventoryTransaction
		if proto.Unmarshal(m.Data(), &c) != nil {
			return nil
		}
		env := c.GetEnvelope()
		q, err := recon.ParseQty(c.GetQuantity().GetValue())
		if err != nil {
			return nil
		}
		p := Posting{Flow: flow, Key: env.GetIdempotencyKey(), SourceID: env.GetSourceId(),
			Code: sinewv1.KeyMap(env.GetBusinessKeys())["epic_code"], Item: c.GetItemNumber(),
			Quantity: q, UOM: c.GetQuantity().GetUom(), Lot: c.GetLotNumber(), Serial: c.GetSerialNumber(),
			Date: c.GetTransactionDate().AsTime().UTC()}
		if _, dup := at[p.Key]; dup {
			return nil
		}
		at[p.Key] = len(out)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s commands: %w", flow, err)
	}
	err = streams.Scan(ctx, js, streams.Results, "result."+streams.Token(flow)+".*", since, func(m jetstream.Msg) error {
		var r sinewv1.LoadResult
		if proto.Unmarshal(m.Data(), &r) != nil {
			return nil
		}
		if i, ok := at[r.GetEnvelope().GetIdempotencyKey()]; ok {
			out[i].Outcome = r.GetOutcome()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s results: %w", flow, err)
	}
	return out, nil
}

// ParseTime reads a FHIR dateTime (a date alone is its midnight UTC).
func ParseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
