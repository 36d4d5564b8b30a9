package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Claim states of an idempotency key.
const (
	claimPosting = "posting" // a post may be on its way: settle by reading Fusion
	claimDone    = "done"    // Fusion has it (FusionID)
	claimFailed  = "failed"  // Fusion refused it (Code, Detail); a replay may try again
)

// claim is an idempotency key's record in KV.
type claim struct {
	State    string    `json:"state"`
	Attempt  int       `json:"attempt"`
	At       time.Time `json:"at"`
	FusionID string    `json:"fusion_id,omitempty"`
	Code     string    `json:"code,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// Lost is set when the last post got no answer at all (a timeout, a
	// dropped connection): Fusion may still be working on it.
	Lost bool `json:"lost,omitempty"`
}

// claims keeps the loader's idempotency keys: one Fusion effect per key.
// Its keys are spread over streams.IdempotencyShards buckets.
type claims struct {
	kv  []jetstream.KeyValue // by shard
	nc  *nats.Conn
	ttl time.Duration // each write's Nats-TTL; 0: kept for ever
}

func (c claims) shard(key string) jetstream.KeyValue { return c.kv[streams.IdempotencyShard(key)] }

// layoutKey in shard 0 records that its keys of other shards were moved.
const layoutKey = "_sharded"

// reshard moves the keys a loader of one bucket wrote to shard 0 into
// their shards, once, before any command is handled: a key read in the
// wrong bucket would look new and be posted again. Loaders of one
// deployment must be upgraded together (stopped, then started).
func (c claims) reshard(ctx context.Context, log *zerolog.Logger) error {
	zero := c.kv[0]
	if _, err := zero.Get(ctx, layoutKey); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("idempotency layout: %w", err)
	}
	keys, err := zero.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("idempotency keys: %w", err)
	}
	var moved int
	for key := range keys.Keys() {
		i := streams.IdempotencyShard(key)
		if key == layoutKey || i == 0 {
			continue
		}
		e, err := zero.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("idempotency %s: %w", key, err)
		}
		// An entry already in its shard is newer than the one left behind.
		if _, err := c.kv[i].Create(ctx, key, e.Value()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("idempotency %s to shard %d: %w", key, i, err)
		}
		if err := zero.Purge(ctx, key); err != nil {
			return fmt.Errorf("idempotency %s: %w", key, err)
		}
		moved++
	}
	if _, err := zero.Put(ctx, layoutKey, []byte(strconv.Itoa(streams.IdempotencyShards))); err != nil {
		return fmt.Errorf("idempotency layout: %w", err)
	}
	if moved > 0 {
		log.Info().Int("keys", moved).Msg("idempotency keys moved to their shards")
	}
	return nil
}

func claimKey(flow, key string) string { return streams.Token(flow) + "." + bus.HashKey(key) }

func (c claims) get(ctx context.Context, key string) (*claim, uint64, error) {
	e, err := c.shard(key).Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	} else if err != nil {
		return nil, 0, err
	}
	var cl claim
	if err := json.Unmarshal(e.Value(), &cl); err != nil {
		return nil, 0, fmt.Errorf("idempotency %s: %w", key, err)
	}
	return &cl, e.Revision(), nil
}

// put writes cl with compare-and-set on rev (0: the key must be new);
// jetstream.ErrKeyExists means someone else got there first. It is the
// bucket's own compare-and-set (the expected last sequence of the key's
// subject), published through streams.Publish as it runs twice for every
// command; keys are never deleted, so "new" means "no entry at all" (never
// claimed, or expired: see Config.ClaimTTL).
func (c claims) put(ctx context.Context, key string, rev uint64, cl *claim) (uint64, error) {
	b, _ := json.Marshal(cl)
	m := &nats.Msg{Subject: "$KV." + c.shard(key).Bucket() + "." + key, Data: b, Header: nats.Header{}}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	if c.ttl > 0 {
		m.Header.Set(jetstream.MsgTTLHeader, c.ttl.String())
	}
	ack, err := streams.Publish(ctx, c.nc, m)
	if err != nil {
		if rev == 0 && isWrongSeq(err) {
			return 0, fmt.Errorf("idempotency %s: %w", key, jetstream.ErrKeyExists)
		}
		return 0, fmt.Errorf("idempotency %s: %w", key, err)
	}
	return ack.Sequence, nil
}

// effect is what one command did in Fusion.
type effect struct {
	outcome  string // "accepted", "rejected"
	fusionID string
	code     string
	detail   string
}

// postOnce gives the command with idempotency key one effect in Fusion.
// The key is claimed in KV before posting. A key claimed by an earlier
// delivery that never recorded its outcome is settled by reading Fusion
// (find), never by posting blindly; a post whose answer was lost is read
// again only after the client's timeout, once it can no longer land.
// dated is the command's business date (zero: unknown): with claims that
// expire, it tells whether a missing key may be one that expired.
func (s *Service) postOnce(ctx context.Context, d *bus.Delivery, flow, idemKey string, dated time.Time,
	find func(context.Context) (*effect, error), post func(context.Context) (*effect, error)) (*effect, error) {
	var ef *effect
	err := s.retrying(ctx, idemKey, func() error {
		var err error
		ef, err = s.postOnceTry(ctx, d, flow, idemKey, dated, find, post)
		return err
	})
	return ef, err
}

// mayOutliveClaim reports whether a command's claim may have expired
// while the command can still arrive: it is dated before the oldest claim
// still kept (less the skew), ahead of the clock, undated, or sent again
// on purpose (an operator's replay, a catch-up).
func (s *Service) mayOutliveClaim(d *bus.Delivery, dated time.Time, now time.Time) bool {
	if s.cfg.ClaimTTL <= 0 {
		return false
	}
	if d.Header.Get(dlq.ReplayOfHeader) != "" || d.Header.Get(schedule.CatchUpHeader) != "" || dated.IsZero() {
		return true
	}
	return dated.Before(now.Add(-s.cfg.ClaimTTL+s.cfg.ClaimSkew)) || dated.After(now.Add(s.cfg.ClaimSkew))
}

func (s *Service) postOnceTry(ctx context.Context, d *bus.Delivery, flow, idemKey string, dated time.Time,
	find func(context.Context) (*effect, error), post func(context.Context) (*effect, error)) (*effect, error) {
	key := claimKey(flow, idemKey)
	first := &claim{State: claimPosting, Attempt: 1, At: time.Now().UTC()}
	if s.mayOutliveClaim(d, dated, first.At) {
		// Its key may have expired: a missing key proves nothing, so
		// Fusion is asked first and what it holds is claimed as done.
		if cl, _, err := s.claims.get(ctx, key); err != nil {
			return nil, err
		} else if cl == nil {
			ef, err := find(ctx)
			if err != nil {
				return nil, busError("read back", err)
			}
			if ef != nil {
				if err := s.settle(ctx, key, 0, 1, ef); err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSeq(err) {
					return nil, err
				}
				return ef, nil
			}
		}
	}
	// The common case is a key never seen: claim it at once (one write,
	// no read); only a key that exists is read and looked at.
	if rev, err := s.claims.put(ctx, key, 0, first); err == nil {
		return s.post(ctx, key, rev, first, post)
	} else if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSeq(err) {
		return nil, err
	}
	for {
		cl, rev, err := s.claims.get(ctx, key)
		if err != nil {
			return nil, err
		}
		attempt := 1
		switch {
		case cl == nil:
		case cl.State == claimDone && (d.Header.Get(schedule.CatchUpHeader) == "" || time.Since(cl.At) < s.cfg.CatchUpTrust):
			return &effect{outcome: "accepted", fusionID: cl.FusionID, detail: "already in Fusion"}, nil
		case cl.State == claimDone: // a catch-up saw Fusion lack it: look before posting again
			ef, err := find(ctx)
			if err != nil {
				return nil, busError("read back", err)
			}
			if ef != nil {
				return ef, nil
			}
			attempt = cl.Attempt + 1
		case cl.State == claimFailed && d.Header.Get(dlq.ReplayOfHeader) == "":
			return &effect{outcome: "rejected", code: cl.Code, detail: cl.Detail}, nil
		case cl.State == claimFailed: // an operator's replay, after a fix: try again
			attempt = cl.Attempt + 1
		default: // posting: did it land?
			if cl.Lost {
				if wait := s.cfg.Fusion.Timeout + 5*time.Second - time.Since(cl.At); wait > 0 {
					return nil, bus.RetryAfter(wait, fmt.Errorf("an earlier post's answer was lost; reading Fusion in %v", wait.Round(time.Second)))
				}
			}
			ef, err := find(ctx)
			if err != nil {
				return nil, busError("read back", err)
			}
			if ef != nil {
				return ef, s.settle(ctx, key, rev, cl.Attempt, ef)
			}
			attempt = cl.Attempt + 1
		}
		next := &claim{State: claimPosting, Attempt: attempt, At: time.Now().UTC()}
		if rev, err = s.claims.put(ctx, key, rev, next); errors.Is(err, jetstream.ErrKeyExists) || isWrongSeq(err) {
			continue // another delivery moved it: look again
		} else if err != nil {
			return nil, err
		}
		return s.post(ctx, key, rev, next, post)
	}
}

// post sends a claimed command and records its effect.
func (s *Service) post(ctx context.Context, key string, rev uint64, cl *claim, post func(context.Context) (*effect, error)) (*effect, error) {
	ef, err := post(ctx)
	if err != nil {
		var fe *fusion.Error
		if !errors.As(err, &fe) {
			// No answer: the post may still land. Record that, so the
			// next try waits out the timeout before reading.
			cl.Lost = true
			_, _ = s.claims.put(ctx, key, rev, cl)
			return nil, busError("post", err)
		}
		if fe.Temporary() {
			return nil, busError("post", err) // answered: Fusion did not take it, or find will show it
		}
		ef = &effect{outcome: "rejected", code: fusionCode(fe), detail: clip(fe.Error(), 400)}
	}
	return ef, s.settle(ctx, key, rev, cl.Attempt, ef)
}

// settle records the effect under the key.
func (s *Service) settle(ctx context.Context, key string, rev uint64, attempt int, ef *effect) error {
	st := claimDone
	if ef.outcome != "accepted" {
		st = claimFailed
	}
	_, err := s.claims.put(ctx, key, rev, &claim{State: st, Attempt: attempt, At: time.Now().UTC(),
		FusionID: ef.fusionID, Code: ef.code, Detail: ef.detail})
	return err
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// fusionCode is Fusion's own error code of a refusal, or its HTTP status.
func fusionCode(fe *fusion.Error) string {
	for _, d := range fe.Details {
		if d.Code != "" {
			return d.Code
		}
	}
	return "HTTP " + strconv.Itoa(fe.StatusCode)
}

// loadInventory stages one inventory or materials transaction.
func (s *Service) loadInventory(ctx context.Context, d *bus.Delivery, cmd *sinewv1.InventoryTransaction) error {
	env := cmd.GetEnvelope()
	if env.GetIdempotencyKey() == "" {
		return bus.Permanent(reason.New(reason.LoaderCommandInvalid, "inventory transaction without an idempotency key"))
	}
	header, err1 := strconv.ParseInt(cmd.SourceHeaderId, 10, 64)
	line, err2 := strconv.ParseInt(cmd.SourceLineId, 10, 64)
	if err1 != nil || err2 != nil || header <= 0 || line <= 0 {
		return bus.Permanent(reason.Wrap(reason.LoaderCommandInvalid, fmt.Errorf("source header/line id %q/%q are not positive integers", cmd.SourceHeaderId, cmd.SourceLineId)))
	}
	var code string
	if s.inv != nil {
		code, _ = s.inv.SourceCode(env.GetFlow())
	}
	if code == "" {
		return bus.Permanent(reason.Wrap(reason.LoaderCommandInvalid, fmt.Errorf("flow %q has no fusion_source in flows.yaml", env.GetFlow())))
	}
	t := fusion.InventoryTransaction{
		OrganizationName: cmd.Organization, SubinventoryCode: cmd.Subinventory, ItemNumber: cmd.ItemNumber,
		TransactionTypeName: cmd.TransactionType, TransactionQuantity: fusion.Decimal(cmd.GetQuantity().GetValue()),
		TransactionUnitOfMeasure: cmd.GetQuantity().GetUom(), TransactionDate: cmd.GetTransactionDate().AsTime(),
		SourceCode: code, SourceHeaderID: header, SourceLineID: line, TransactionReference: env.GetSourceId(),
		LotNumber: cmd.LotNumber, SerialNumber: cmd.SerialNumber, Program340B: cmd.Program_340B, CostCenter: cmd.CostCenter,
	}
	find := func(ctx context.Context) (*effect, error) {
		rows, err := s.fusion.FindInventoryTransactions(ctx, t.SourceCode, header, line)
		if err != nil || len(rows) == 0 {
			return nil, err
		}
		for _, r := range rows {
			if r.ProcessFlag != 3 {
				return &effect{outcome: "accepted", fusionID: strconv.FormatInt(r.TransactionInterfaceID, 10), detail: "found in Fusion after a lost answer"}, nil
			}
		}
		r := rows[len(rows)-1] // in Fusion's interface with an error
		return &effect{outcome: "rejected", fusionID: strconv.FormatInt(r.TransactionInterfaceID, 10), code: r.ErrorCode, detail: r.ErrorExplanation}, nil
	}
	post := func(ctx context.Context) (*effect, error) {
		var r fusion.StagedStatus
		var err error
		if s.batch != nil {
			r, err = s.batch.post(ctx, t)
		} else {
			r, err = createStaged(ctx, s.fusion, t)
		}
		if err != nil {
			return nil, err
		}
		if r.ProcessFlag == 3 {
			return &effect{outcome: "rejected", fusionID: strconv.FormatInt(r.TransactionInterfaceID, 10), code: r.ErrorCode, detail: r.ErrorExplanation}, nil
		}
		return &effect{outcome: "accepted", fusionID: strconv.FormatInt(r.TransactionInterfaceID, 10)}, nil
	}
	ef, err := s.postOnce(ctx, d, env.GetFlow(), env.GetIdempotencyKey(), t.TransactionDate, find, post)
	if err != nil {
		return err
	}
	pairs := []string{"item", cmd.ItemNumber, "organization", cmd.Organization, "subinventory", cmd.Subinventory,
		"quantity", cmd.GetQuantity().GetValue(), "uom", cmd.GetQuantity().GetUom(), "program_340b", strconv.FormatBool(cmd.Program_340B),
		"source_header_id", cmd.SourceHeaderId, "source_line_id", cmd.SourceLineId,
		"transaction_date", cmd.GetTransactionDate().AsTime().UTC().Format(time.RFC3339)}
	if cmd.LotNumber != "" {
		pairs = append(pairs, "lot", cmd.LotNumber)
	}
	if cmd.SerialNumber != "" {
		pairs = append(pairs, "serial", cmd.SerialNumber)
	}
	keys := sinewv1.KeysOf(pairs...)
	return s.restResult(ctx, d, env, "transaction_interface_id", ef, keys)
}

// loadItem upserts an item master record (Upsert-Mode makes a repeat
// harmless). Only what the command carries is sent: an unset flag, and
// the status of a plain update, leave Fusion's values alone.
func (s *Service) loadItem(ctx context.Context, d *bus.Delivery, cmd *sinewv1.ItemUpsert) error {
	env := cmd.GetEnvelope()
	status := ""
	switch cmd.Action {
	case "create", "reactivate":
		status = "Active"
	case "deactivate":
		status = "Inactive"
	}
	it := fusion.Item{ItemNumber: cmd.ItemNumber, OrganizationCode: cmd.Organization, Description: cmd.Description,
		PrimaryUOMCode: cmd.PrimaryUom, ItemClass: cmd.ItemClass, ItemStatus: status,
		LotControlled: cmd.LotControlled, SerialControlled: cmd.SerialControlled, Program340B: cmd.Program_340B}
	var ef *effect
	err := s.retrying(ctx, env.GetIdempotencyKey(), func() error {
		_, err := s.fusion.UpsertItem(ctx, it)
		var fe *fusion.Error
		switch {
		case err == nil:
			ef = &effect{outcome: "accepted", fusionID: cmd.Organization + "/" + cmd.ItemNumber}
		case errors.As(err, &fe) && !fe.Temporary():
			ef = &effect{outcome: "rejected", code: fusionCode(fe), detail: clip(fe.Error(), 400)}
		default:
			return busError("upsert item", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.restResult(ctx, d, env, "item", ef, sinewv1.KeysOf("item", cmd.ItemNumber, "organization", cmd.Organization, "action", cmd.Action))
}

// loadSupplier creates a supplier once: one that exists is left as it is.
func (s *Service) loadSupplier(ctx context.Context, d *bus.Delivery, cmd *sinewv1.SupplierChange) error {
	env := cmd.GetEnvelope()
	sup := fusion.Supplier{Name: cmd.Name, SupplierNumber: cmd.SupplierNumber, Status: cmd.Status}
	for _, site := range cmd.Sites {
		sup.Sites = append(sup.Sites, fusion.SupplierSite{Site: site.SiteCode, ProcurementBU: site.ProcurementBu,
			AddressLine1: site.AddressLine, City: site.City, PostalCode: site.PostalCode, Country: site.Country})
	}
	find := func(ctx context.Context) (*effect, error) {
		got, err := s.fusion.FindSupplier(ctx, cmd.SupplierNumber)
		if err != nil || got == nil {
			return nil, err
		}
		return &effect{outcome: "accepted", fusionID: strconv.FormatInt(got.SupplierID, 10), detail: "supplier already in Fusion"}, nil
	}
	post := func(ctx context.Context) (*effect, error) {
		if ef, err := find(ctx); err != nil || ef != nil {
			return ef, err
		}
		got, err := s.fusion.CreateSupplier(ctx, sup)
		if err != nil {
			return nil, err
		}
		return &effect{outcome: "accepted", fusionID: strconv.FormatInt(got.SupplierID, 10)}, nil
	}
	// Its post looks in Fusion first, so an expired key cannot double it:
	// dated now, it is not looked up twice.
	ef, err := s.postOnce(ctx, d, env.GetFlow(), env.GetIdempotencyKey(), time.Now(), find, post)
	if err != nil {
		return err
	}
	return s.restResult(ctx, d, env, "supplier_id", ef, sinewv1.KeysOf("supplier_number", cmd.SupplierNumber))
}

// refusalCode is the reason code of a Fusion error code: one with its own
// catalogue entry, else FusionRefused.
func refusalCode(code string) reason.Code {
	if code == "EGP_CONTROL_ONHAND_EXISTS" {
		return reason.FusionOnhandControlExists
	}
	return reason.FusionRefused
}

// restResult publishes a REST command's outcome to RESULTS; a rejection is
// also dead-lettered with Fusion's code and text, for an analyst to fix and
// replay.
func (s *Service) restResult(ctx context.Context, d *bus.Delivery, env *sinewv1.Envelope, idName string, ef *effect, keys []*sinewv1.KeyValue) error {
	keys = sinewv1.MergeKeys(keys, env.GetBusinessKeys())
	id := "load:" + env.GetIdempotencyKey() + ":" + ef.outcome + ":" + ef.fusionID + ":" + ef.code
	if run := d.Header.Get(schedule.CatchUpHeader); run != "" {
		// A catch-up waits for this answer: the same effect as before
		// (a trusted claim, a row found) must not be deduplicated away.
		id += ":catch-up:" + run
	}
	r := &sinewv1.LoadResult{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID(id),
			Flow:    env.GetFlow(), SourceSystem: "fusion", SourceId: env.GetSourceId(), IdempotencyKey: env.GetIdempotencyKey(),
			CausedBy: env.GetEventId(), ReceivedAt: env.GetReceivedAt(), CrosswalkVersion: env.GetCrosswalkVersion(), BusinessKeys: keys,
		},
		Outcome: ef.outcome, TargetSystem: "fusion", CompletedAt: timestamppb.Now(),
	}
	if ef.fusionID != "" {
		r.TargetIds = map[string]string{idName: ef.fusionID}
	}
	if ef.outcome != "accepted" {
		r.Errors = []*sinewv1.LineError{{LineKey: env.GetIdempotencyKey(), Code: ef.code, Message: ef.detail}}
	}
	if err := s.result(ctx, env.GetFlow(), ef.outcome, r.Envelope.EventId, r); err != nil {
		return err
	}
	d.AuditDetail = fmt.Sprintf("%s %s in Fusion (%s %s)", strings.TrimPrefix(d.Subject, "fusion.cmd."), ef.outcome, idName, ef.fusionID)
	if ef.outcome != "accepted" {
		// The reason goes to the DLQ, the logs and the audit trail: Fusion's
		// text with the values it quotes (a lot, a reference) left out.
		return bus.Permanent(reason.Wrap(refusalCode(ef.code), fmt.Errorf("refused by Fusion: %s: %s %s", env.GetIdempotencyKey(), ef.code, unquoted(ef.detail))))
	}
	return nil
}

// unquoted replaces every double-quoted part of Fusion's text ("The value
// of the attribute X isn't valid: \"…\".") by its length: Fusion quotes
// the values it was sent, and some of those are the message's.
func unquoted(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			b.WriteString(s[:i])
			fmt.Fprintf(&b, "(%d bytes withheld)", len(s)-i-1)
			return b.String()
		}
		b.WriteString(s[:i])
		fmt.Fprintf(&b, "(%d bytes withheld)", j)
		s = s[i+j+2:]
	}
}
