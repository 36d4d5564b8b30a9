// Package workersync is the worker-sync flow's Fusion side: it follows
// Fusion HCM's Atom feeds of new hires, employee updates and terminations,
// reads each changed worker (the workers resource), or polls workers by
// LastUpdateDate while the feeds are off (fusion_read), keeps the attributes
// Fusion owns under the flow's conflict rules, drops what Sinew already
// wrote to Epic (echo suppression, keyed hashes in the fusion_poll
// bucket) and publishes the rest as a WorkerChange on EPIC_CMD, where
// the loader sends it to Epic as MFN^M02 over MLLP.
//
// The poller runs in transform: transform maps, holds the grant to
// publish EPIC_CMD and the fusion_poll bucket, and reading a feed is the
// first half of mapping it. Ingest's inputs are pushed to Sinew (MLLP,
// SFTP, drop folders); a poll of Fusion is Sinew's own read.
package workersync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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
	ws "github.com/sinewhq/sinew/pkg/workersync"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is this flow's id in flows.yaml.
const Flow = "worker-sync"

// Op is the EPIC_CMD operation of a provider change (epic.cmd.<flow>.provider).
const Op = "provider"

// Entry registers the flow.
func Entry() registry.Entry {
	return registry.Entry{ID: Flow, NewPoller: NewPoller, Current: Current, NewFHIR: NewFHIR,
		// Epic's provider updates (the provider shape) are written to HCM.
		Fusion: map[string]registry.Op{hl7flow.OpWorker: registry.OpWorker}}
}

// Current is Fusion's active workers for the reconciler, each with the
// digest of the attributes Fusion owns (HR): Epic's provider master
// should have acknowledged a change carrying that state.
func Current(ctx context.Context, f *flows.Flow, fc *fusion.Client) ([]registry.Record, error) {
	rules, err := ws.RulesOf(*f)
	if err != nil {
		return nil, err
	}
	all, err := fc.Workers(ctx, fusion.WorkerQuery{})
	if err != nil {
		return nil, err
	}
	var out []registry.Record
	for _, w := range all {
		if w.Status == "ACTIVE" {
			out = append(out, registry.Record{Key: w.PersonNumber, Version: hrState(rules, w), Updated: w.LastUpdate})
		}
	}
	return out, nil
}

// hrState digests the values of the attributes Fusion owns of w (a
// command's registry.StateKey): equal digests, equal HR attributes.
func hrState(rules ws.Rules, w fusion.Worker) string {
	owned := ws.Owned(rules, ws.Fusion, ws.FusionValues(w))
	attrs := make([]string, 0, len(owned))
	for a := range owned {
		attrs = append(attrs, string(a))
	}
	sort.Strings(attrs)
	h := sha256.New()
	for _, a := range attrs {
		fmt.Fprintf(h, "%s=%s\n", a, owned[ws.Attr(a)])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Poller follows Fusion HCM for one two-way worker flow.
type Poller struct {
	flow     *flows.Flow
	rules    ws.Rules
	fusion   *fusion.Client
	pub      registry.Publisher
	kv       jetstream.KeyValue
	states   *flowstate.Store
	interval time.Duration
	hash     ws.Hasher
	log      func(err error, msg string)
}

// NewPoller builds the poller from the flow's flows.yaml entry.
func NewPoller(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Poller, error) {
	rules, err := ws.RulesOf(*f)
	if err != nil {
		return nil, err
	}
	if env.Fusion == nil {
		return nil, errors.New("worker-sync: no Fusion client configured")
	}
	kv, err := env.JS.KeyValue(ctx, streams.KVFusionPoll)
	if err != nil {
		return nil, fmt.Errorf("worker-sync: bucket %s: %w", streams.KVFusionPoll, err)
	}
	st, err := flowstate.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	iv := env.PollInterval
	if iv <= 0 {
		iv = 5 * time.Second
	}
	log := env.Log
	if log == nil {
		log = func(error, string) {}
	}
	return &Poller{flow: f, rules: rules, fusion: env.Fusion, pub: env.Publisher, kv: kv, states: st, interval: iv,
		hash: ws.Hasher{Key: []byte(env.HashKey)}, log: log}, nil
}

// Run polls every interval until ctx ends, while the flow is active.
func (p *Poller) Run(ctx context.Context) error {
	return registry.PollLoop(ctx, p.flow, p.states, p.interval, p.log, p.Poll)
}

var feeds = []struct{ feed, action string }{
	{fusion.FeedNewHire, ws.ActionHire},
	{fusion.FeedEmpUpdate, ws.ActionUpdate},
	{fusion.FeedTermination, ws.ActionTerminate},
}

// Poll reads Fusion's changes the way the flow's fusion_read says: the
// Atom feeds (feeds, the default), workers by LastUpdateDate (workers),
// or the feeds and, when one cannot be read, workers (auto). Either way
// a change is published at most once: the message id is the worker's
// change time, and a change whose Fusion-owned values are what Sinew last
// sent to Epic sends nothing.
func (p *Poller) Poll(ctx context.Context) error {
	switch p.flow.FusionRead {
	case flows.FusionReadWorkers:
		return p.pollWorkers(ctx)
	case flows.FusionReadAuto:
		err := p.pollFeeds(ctx)
		if err == nil {
			return nil
		}
		var fe *feedError
		if !errors.As(err, &fe) {
			return err // publishing failed: the same cursor next time
		}
		p.log(fe.err, p.flow.ID+": HCM Atom feed unavailable; polling workers instead")
		return p.pollWorkers(ctx)
	}
	return p.pollFeeds(ctx)
}

// feedError is a feed that could not be read (off, or failing).
type feedError struct {
	feed string
	err  error
}

func (e *feedError) Error() string { return "feed " + e.feed + ": " + e.err.Error() }
func (e *feedError) Unwrap() error { return e.err }

// pollFeeds reads each feed from its cursor and publishes what changed. The
// cursor moves past an entry only after its change is on EPIC_CMD, so a
// crash re-reads it; the message id makes the repeat a no-op.
func (p *Poller) pollFeeds(ctx context.Context) error {
	for _, fd := range feeds {
		key := p.flow.ID + ".cursor." + fd.feed
		since := p.cursor(ctx, key)
		entries, err := p.fusion.Feed(ctx, fd.feed, since, 100)
		if err != nil {
			return &feedError{feed: fd.feed, err: err}
		}
		for _, e := range entries {
			action := fd.action
			if fd.action == ws.ActionHire && e.ActionCode == "REHIRE" {
				action = ws.ActionRehire
			}
			if err := p.change(ctx, action, e.PersonNumber, e.Updated); err != nil {
				return err
			}
			if err := p.setCursor(ctx, key, e.Updated); err != nil {
				return err
			}
		}
	}
	return nil
}

// workersCursor is the LastUpdateDate watermark of the polling fallback.
func (p *Poller) workersCursor() string { return p.flow.ID + ".cursor.workers" }

// pollWorkers reads the workers changed after the watermark (Fusion's
// paging), oldest change first, and publishes each as the change its
// state makes it against what Sinew last sent Epic: a hire (never sent),
// a termination, a rehire or an update. The watermark moves past a worker
// only once its change is published; then the feed cursors are moved up
// to it too, so the feeds, once back, do not send the same changes again.
func (p *Poller) pollWorkers(ctx context.Context) error {
	key := p.workersCursor()
	since := p.cursor(ctx, key)
	ws0, err := p.fusion.Workers(ctx, fusion.WorkerQuery{UpdatedAfter: since})
	if err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	sort.SliceStable(ws0, func(i, j int) bool { return ws0[i].LastUpdate.Before(ws0[j].LastUpdate) })
	for _, w := range ws0 {
		if err := p.changeOf(ctx, "", w, w.LastUpdate); err != nil {
			return err
		}
		if err := p.setCursor(ctx, key, w.LastUpdate); err != nil {
			return err
		}
	}
	if len(ws0) == 0 {
		return nil
	}
	last := ws0[len(ws0)-1].LastUpdate
	for _, fd := range feeds {
		fk := p.flow.ID + ".cursor." + fd.feed
		if p.cursor(ctx, fk).Before(last) {
			if err := p.setCursor(ctx, fk, last); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Poller) setCursor(ctx context.Context, key string, t time.Time) error {
	if _, err := p.kv.Put(ctx, key, []byte(t.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("cursor %s: %w", key, err)
	}
	return nil
}

func (p *Poller) cursor(ctx context.Context, key string) time.Time {
	e, err := p.kv.Get(ctx, key)
	if err != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(e.Value()))
	return t
}

// change reads one worker named by a feed entry and publishes its change.
func (p *Poller) change(ctx context.Context, action, personNumber string, at time.Time) error {
	if personNumber == "" {
		return nil
	}
	found, err := p.fusion.Workers(ctx, fusion.WorkerQuery{PersonNumber: personNumber})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if len(found) != 1 {
		return nil // gone since (a purge): nothing to send
	}
	return p.changeOf(ctx, action, found[0], at)
}

// sentStatus is the status Sinew last sent Epic for a worker: "A", "I",
// or "" when it never sent one (the worker is not in Epic by Sinew).
func (p *Poller) sentStatus(written ws.Written) string {
	for _, st := range []string{"A", "I"} {
		if h := written[ws.Status]; h != "" && h == p.hash.Sum(ws.Status, st) {
			return st
		}
	}
	return ""
}

// Action is what a worker's change is to Epic, from the feed's action
// (empty when polling) and the status Sinew last sent: a hire Sinew
// already sent is an update (a re-read), a worker active again after an
// inactive status sent is a rehire (Epic's provider is reactivated, the
// same record, not a new one), one inactive after an active status sent
// a termination. "" means nothing to send (polling finds a worker that
// left before Epic ever had it).
func Action(feed, sent, status string) string {
	switch {
	case sent == "" && status == "I" && feed == "":
		return "" // polling: left before Epic ever had it
	case sent == "":
		if feed == "" || feed == ws.ActionRehire {
			return ws.ActionHire
		}
		return feed
	case sent == "I" && status == "A":
		return ws.ActionRehire
	case sent == "A" && status == "I":
		return ws.ActionTerminate
	case feed == ws.ActionHire || feed == ws.ActionRehire || feed == "":
		return ws.ActionUpdate
	}
	return feed
}

// changeOf publishes one worker's Fusion-owned attributes unless each is
// what Sinew last wrote to Epic.
func (p *Poller) changeOf(ctx context.Context, feedAction string, w fusion.Worker, at time.Time) error {
	personNumber := w.PersonNumber
	values := ws.FusionValues(w)
	wkey := p.flow.ID + ".written.epic." + streams.Token(personNumber)
	var written ws.Written
	if e, err := p.kv.Get(ctx, wkey); err == nil {
		_ = json.Unmarshal(e.Value(), &written)
	}
	action := Action(feedAction, p.sentStatus(written), values[ws.Status])
	if action == "" {
		return nil
	}
	send := ws.Owned(p.rules, ws.Fusion, values)
	if action == ws.ActionHire {
		// Epic has no record yet: it starts from Fusion's clinical values;
		// from then on Epic's own win.
		send = values
	}
	real := p.hash.Unechoed(written, ws.Change{Side: ws.Fusion, Values: send})
	if len(real.Values) == 0 && action != ws.ActionHire {
		return nil // nothing Fusion owns changed: an echo of Sinew's own write, a clinical-only edit, or a re-read
	}
	attrs := map[string]string{ws.IDAssignment: w.AssignmentNumber}
	for a, v := range send {
		attrs[string(a)] = v
	}
	id := Flow + "/fusion/" + personNumber + "/" + strconv.FormatInt(at.UnixNano(), 10)
	ev := &sinewv1.WorkerChange{
		Envelope: &sinewv1.Envelope{
			EventId: ids.EventID(id), Flow: p.flow.ID, SourceSystem: p.flow.Source,
			SourceId: personNumber, IdempotencyKey: id, ReceivedAt: timestamppb.Now(),
			BusinessKeys: []*sinewv1.KeyValue{{Key: "person_number", Value: personNumber}, {Key: registry.StateKey, Value: hrState(p.rules, w)}},
		},
		Origin: string(ws.Fusion), PersonNumber: personNumber, EpicProviderId: w.EpicProviderID, Npi: w.NPI,
		Action: action, EffectiveAt: timestamppb.New(at), Attributes: attrs,
	}
	if _, err := p.pub.Publish(ctx, streams.EpicCmdSubject(p.flow.ID, Op), id, ev); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	b, _ := json.Marshal(p.hash.Record(written, send))
	if _, err := p.kv.Put(ctx, wkey, b); err != nil {
		return fmt.Errorf("written %s: %w", wkey, err)
	}
	return nil
}
