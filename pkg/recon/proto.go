package recon

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Subject is the RECON subject of a flow's rows of one tier:
// recon.<flow>.<tier>, the tier as a number (0 for the summary).
func Subject(flow string, tier int) string {
	return streams.ReconSubject(flow, strconv.Itoa(tier))
}

// SubjectFilter selects the RECON rows of one flow, or of every flow when
// flow is "".
func SubjectFilter(flow string) string {
	s := Subject(flow, SummaryTier)
	if flow == "" {
		s, _, _ = strings.Cut(s, ".") // the stream's prefix: "recon"
		return s + ".>"
	}
	return s[:strings.LastIndexByte(s, '.')+1] + "*"
}

// MsgID is the Nats-Msg-Id of a row published by one reconciliation run
// (run names it, e.g. the read-back's time): the same run republished is
// stored once, a later run's row is a new message and the latest state.
func MsgID(flow string, r Row, run string) string {
	return "recon:" + ids.HashKey(flow, r.Scope, strconv.Itoa(r.Tier), r.Key, run)
}

// Proto is the row as published on RECON. Values are exact decimals:
// counts for UnitLines, amounts with two decimals otherwise, the unit as
// the quantity's uom.
func (r Row) Proto(flow string, checkedAt time.Time) *sinewv1.ReconRow {
	q := func(v money.Amount) *sinewv1.Quantity {
		return &sinewv1.Quantity{Value: r.FormatValue(v), Uom: r.Unit}
	}
	return &sinewv1.ReconRow{
		Envelope: &sinewv1.Envelope{
			EventId:      ids.EventID(MsgID(flow, r, checkedAt.UTC().Format(time.RFC3339Nano))),
			Flow:         flow,
			SourceId:     r.Scope,
			BusinessKeys: sinewv1.KeysOf("batch", r.Scope),
		},
		Tier:        int32(r.Tier),
		Scope:       r.Scope,
		Key:         r.Key,
		Hop:         r.Hop,
		SourceValue: q(r.Source),
		TargetValue: q(r.Target),
		Variance:    q(r.Variance),
		Verdict:     r.Verdict,
		Explanation: r.Explanation,
		CheckedAt:   timestamppb.New(checkedAt),
	}
}

// RowFromProto is the inverse of Row.Proto. Flow is in p's envelope.
func RowFromProto(p *sinewv1.ReconRow) (Row, error) {
	r := Row{Tier: int(p.GetTier()), Scope: p.GetScope(), Key: p.GetKey(), Hop: p.GetHop(),
		Unit: p.GetSourceValue().GetUom(), Verdict: p.GetVerdict(), Explanation: p.GetExplanation()}
	for _, v := range []struct {
		name string
		q    *sinewv1.Quantity
		dst  *money.Amount
	}{{"source", p.GetSourceValue(), &r.Source}, {"target", p.GetTargetValue(), &r.Target}, {"variance", p.GetVariance(), &r.Variance}} {
		if v.q.GetValue() == "" {
			continue
		}
		var err error
		if r.Unit == UnitLines {
			var n int64
			n, err = strconv.ParseInt(v.q.GetValue(), 10, 64)
			*v.dst = money.Amount(n)
		} else if strings.HasPrefix(r.Unit, UnitQtyPrefix) {
			var q Qty
			q, err = ParseQty(v.q.GetValue())
			*v.dst = money.Amount(q)
		} else {
			*v.dst, err = money.Parse(v.q.GetValue())
		}
		if err != nil {
			return Row{}, fmt.Errorf("recon: row %d/%s %s value %q: %w", r.Tier, r.Key, v.name, v.q.GetValue(), err)
		}
	}
	return r, nil
}
