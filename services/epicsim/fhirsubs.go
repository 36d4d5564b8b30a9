package epicsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/smart"
)

// SubscriptionsConfig turns on a topic-based subscription manager (the
// Subscriptions R5 Backport IG for R4) beside the FHIR server: one topic
// per searchable type (TopicURL), rest-hook channels, handshake,
// heartbeats and event notifications numbered per subscription. Real
// Epic has no Subscription resource; this is the interface of servers
// that do, for Sinew's notification intake.
type SubscriptionsConfig struct {
	Enabled bool `yaml:"enabled"`
	// Events serves Subscription/<id>/$events (gap recovery); without it
	// the client must re-read.
	Events bool `yaml:"events"`
	// DropEvents are event numbers whose notification is never sent
	// (a gap the client must detect and recover).
	DropEvents []int64 `yaml:"drop_events"`
	// NoHeartbeats stops heartbeats (the client must notice the silence).
	NoHeartbeats bool `yaml:"no_heartbeats"`
}

// TopicURL is the canonical of the simulator's topic for changes to typ.
func TopicURL(typ string) string {
	return "https://epicsim.example/fhir/SubscriptionTopic/" + typ + "-update"
}

type simSub struct {
	id        string
	client    string
	typ       string
	spec      fhir.SubscriptionSpec
	status    string // requested, active, error
	events    []simEvent
	heartbeat chan struct{} // closed when the subscription stops
}

type simEvent struct {
	n     int64
	at    time.Time
	focus string // Type/id
	json  []byte
}

// subsState is the subscription manager's state (FHIRSim.mu).
type subsState struct {
	subs    map[string]*simSub
	updated map[string][]byte // Type/id → its current version's JSON
	version map[string]int
	faults  SubscriptionsConfig
	wg      sync.WaitGroup
	closed  bool
	hc      *http.Client
}

func (s *FHIRSim) subsInit() {
	if s.subs.subs == nil {
		s.subs = subsState{subs: map[string]*simSub{}, updated: map[string][]byte{}, version: map[string]int{}, faults: s.cfg.Subscriptions, hc: &http.Client{Timeout: 10 * time.Second}}
	}
}

// SetSubscriptionFaults replaces the notification faults at run time.
func (s *FHIRSim) SetSubscriptionFaults(f SubscriptionsConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subsInit()
	f.Enabled, f.Events = s.cfg.Subscriptions.Enabled, s.cfg.Subscriptions.Events
	s.subs.faults = f
}

// Close stops the subscriptions' heartbeats and waits for deliveries.
func (s *FHIRSim) Close() {
	s.mu.Lock()
	s.subsInit()
	if !s.subs.closed {
		s.subs.closed = true
		for _, sub := range s.subs.subs {
			close(sub.heartbeat)
		}
	}
	s.mu.Unlock()
	s.subs.wg.Wait()
}

// jsonOf is res's current JSON (its latest version after Update).
func (s *FHIRSim) jsonOf(res *simResource) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jsonLocked(res)
}

func (s *FHIRSim) jsonLocked(res *simResource) []byte {
	if b, ok := s.subs.updated[res.Type+"/"+res.ID]; ok {
		return b
	}
	return res.JSON
}

// Update makes a new version of the resource Type/id (meta.versionId
// and lastUpdated move) and notifies the active subscriptions on its
// type's topic, one event each; it returns once every notification was
// answered (or dropped by a fault). The error is the first failed
// delivery's.
func (s *FHIRSim) Update(ctx context.Context, typ, id string) error {
	return s.update(ctx, typ, id, nil)
}

// update is Update with the new version's content made by edit from the
// current one (nil: the current content, meta aside).
func (s *FHIRSim) update(ctx context.Context, typ, id string, edit func([]byte) ([]byte, error)) error {
	res, ok := s.byKey[typ+"/"+id]
	if !ok {
		return fmt.Errorf("epicsim: no %s/%s", typ, id)
	}
	now := s.now().UTC()
	s.mu.Lock()
	s.subsInit()
	key := typ + "/" + id
	raw := s.jsonLocked(res)
	if edit != nil {
		b, err := edit(raw)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		raw = b
	}
	v := s.subs.version[key]
	if v == 0 {
		v = 1
	}
	v++
	s.subs.version[key] = v
	body := newVersion(raw, v, now)
	s.subs.updated[key] = body
	type send struct {
		sub *simSub
		ev  simEvent
	}
	var sends []send
	for _, sub := range s.subs.subs {
		if sub.typ != typ || sub.status != "active" {
			continue
		}
		ev := simEvent{n: int64(len(sub.events) + 1), at: now, focus: key, json: body}
		sub.events = append(sub.events, ev)
		if containsN(s.subs.faults.DropEvents, ev.n) {
			continue
		}
		sends = append(sends, send{sub, ev})
	}
	s.mu.Unlock()
	var first error
	for _, sd := range sends {
		if err := s.deliver(ctx, sd.sub, fhir.NotificationEventType, []simEvent{sd.ev}); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// newVersion is raw with meta's versionId and lastUpdated replaced, the
// rest byte for byte as seeded.
func newVersion(raw []byte, v int, at time.Time) []byte {
	const head = `"meta":{"versionId":"`
	i := bytes.Index(raw, []byte(head))
	if i < 0 {
		return raw
	}
	j := bytes.IndexByte(raw[i:], '}')
	out := append([]byte(nil), raw[:i]...)
	out = fmt.Appendf(out, `"meta":{"versionId":"%d","lastUpdated":"%s"}`, v, at.Format(time.RFC3339))
	return append(out, raw[i+j+1:]...)
}

func containsN(ns []int64, n int64) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

// SubscriptionIDs lists the subscriptions and their status (tests).
func (s *FHIRSim) SubscriptionIDs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subsInit()
	m := map[string]string{}
	for id, sub := range s.subs.subs {
		m[id] = sub.status
	}
	return m
}

// serveSubscription routes POST Subscription, GET Subscription/<id>,
// $status and $events.
func (s *FHIRSim) serveSubscription(w http.ResponseWriter, r *http.Request, tok token, parts []string) {
	if !s.cfg.Subscriptions.Enabled {
		outcome(w, http.StatusMethodNotAllowed, fhir.NewOutcome(fhir.SeverityError, "not-supported", "Subscription is not supported"))
		return
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodPost:
		s.createSubscription(w, r, tok)
	case len(parts) == 3 && parts[2] == "$status" && r.Method == http.MethodGet:
		s.subscriptionStatus(w, tok, parts[1])
	case len(parts) == 3 && parts[2] == "$events" && r.Method == http.MethodGet:
		if !s.cfg.Subscriptions.Events {
			outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "not-supported", "$events is not supported"))
			return
		}
		s.subscriptionEvents(w, r, tok, parts[1])
	default:
		outcome(w, http.StatusMethodNotAllowed, fhir.NewOutcome(fhir.SeverityError, "not-supported", "POST Subscription, $status and $events only"))
	}
}

func (s *FHIRSim) createSubscription(w http.ResponseWriter, r *http.Request, tok token) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "structure", "unreadable body"))
		return
	}
	spec, err := fhir.ParseSubscription(body)
	if err != nil {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "invalid", err.Error()))
		return
	}
	typ := ""
	for t := range searchParams {
		if TopicURL(t) == spec.Topic {
			typ = t
		}
	}
	if typ == "" {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "not-supported", "unknown topic", "Subscription.criteria"))
		return
	}
	if spec.Content != fhir.PayloadFullResource && spec.Content != fhir.PayloadIDOnly {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "not-supported", "payload content full-resource or id-only", "Subscription.channel.payload"))
		return
	}
	sub := &simSub{id: "sub" + smart.NewJTI()[:12], client: tok.client, typ: typ, spec: *spec, status: "requested", heartbeat: make(chan struct{})}
	sub.spec.ID = sub.id
	s.mu.Lock()
	s.subsInit()
	if s.subs.closed {
		s.mu.Unlock()
		outcome(w, http.StatusServiceUnavailable, fhir.NewOutcome(fhir.SeverityError, "transient", "shutting down"))
		return
	}
	s.subs.subs[sub.id] = sub
	s.subs.wg.Add(1)
	s.mu.Unlock()
	// The handshake follows the creation, as real servers do it: the
	// subscription turns active once the endpoint answers 2xx.
	go func() {
		defer s.subs.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.deliver(ctx, sub, fhir.NotificationHandshake, nil)
		cancel()
		s.mu.Lock()
		sub.status = map[bool]string{true: "active", false: "error"}[err == nil]
		s.mu.Unlock()
		if err == nil && sub.spec.Heartbeat > 0 {
			s.heartbeats(sub)
		}
	}()
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Location", s.BaseURL()+"/Subscription/"+sub.id)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(s.subscriptionJSON(sub, "requested"))
}

func (s *FHIRSim) subscriptionJSON(sub *simSub, status string) []byte {
	b, _ := json.Marshal(map[string]any{"resourceType": "Subscription", "id": sub.id, "status": status, "criteria": sub.spec.Topic,
		"channel": map[string]any{"type": "rest-hook", "endpoint": sub.spec.Endpoint, "payload": "application/fhir+json"}})
	return b
}

// heartbeats sends a heartbeat every period until the subscription stops.
func (s *FHIRSim) heartbeats(sub *simSub) {
	t := time.NewTicker(sub.spec.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-sub.heartbeat:
			return
		case <-t.C:
		}
		s.mu.Lock()
		stop := s.subs.faults.NoHeartbeats
		s.mu.Unlock()
		if stop {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.deliver(ctx, sub, fhir.NotificationHeartbeat, nil)
		cancel()
	}
}

// deliver POSTs one notification to the subscription's endpoint with
// its channel headers.
func (s *FHIRSim) deliver(ctx context.Context, sub *simSub, typ string, events []simEvent) error {
	s.mu.Lock()
	since := int64(len(sub.events))
	status := sub.status
	if typ == fhir.NotificationHandshake {
		status = "requested"
	}
	s.mu.Unlock()
	body := s.notification(sub, typ, status, since, events, sub.spec.Content == fhir.PayloadFullResource)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.spec.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	for _, h := range sub.spec.Headers {
		if k, v, ok := strings.Cut(h, ":"); ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	resp, err := s.subs.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("epicsim: notification %s answered HTTP %d", typ, resp.StatusCode)
	}
	return nil
}

// notification is a subscription-status Bundle (type history; searchset
// for $status) in the Backport IG's R4 shape.
func (s *FHIRSim) notification(sub *simSub, typ, status string, since int64, events []simEvent, full bool) []byte {
	base := s.BaseURL()
	params := []any{
		map[string]any{"name": "subscription", "valueReference": map[string]string{"reference": base + "/Subscription/" + sub.id}},
		map[string]any{"name": "topic", "valueCanonical": sub.spec.Topic},
		map[string]any{"name": "status", "valueCode": status},
		map[string]any{"name": "type", "valueCode": typ},
		map[string]any{"name": "events-since-subscription-start", "valueString": strconv.FormatInt(since, 10)},
	}
	for _, ev := range events {
		params = append(params, map[string]any{"name": "notification-event", "part": []any{
			map[string]any{"name": "event-number", "valueString": strconv.FormatInt(ev.n, 10)},
			map[string]any{"name": "timestamp", "valueInstant": ev.at.Format(time.RFC3339)},
			map[string]any{"name": "focus", "valueReference": map[string]string{"reference": base + "/" + ev.focus}},
		}})
	}
	st, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "meta": map[string]any{"profile": []string{fhir.ProfileStatusR4}}, "parameter": params})
	bundleType := "history"
	if typ == fhir.NotificationQueryState {
		bundleType = "searchset"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"resourceType":"Bundle","id":"%s","type":"%s","timestamp":"%s","entry":[{"fullUrl":"urn:uuid:%s","resource":%s}`,
		smart.NewJTI(), bundleType, s.now().UTC().Format(time.RFC3339), smart.NewJTI(), st)
	if full {
		for _, ev := range events {
			fmt.Fprintf(&b, `,{"fullUrl":"%s/%s","resource":%s,"request":{"method":"PUT","url":"%s"},"response":{"status":"200"}}`, base, ev.focus, ev.json, ev.focus)
		}
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func (s *FHIRSim) lookupSub(w http.ResponseWriter, tok token, id string) (*simSub, bool) {
	s.mu.Lock()
	s.subsInit()
	sub, ok := s.subs.subs[id]
	s.mu.Unlock()
	if !ok || sub.client != tok.client {
		outcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityError, "not-found", "no such Subscription"))
		return nil, false
	}
	return sub, true
}

func (s *FHIRSim) subscriptionStatus(w http.ResponseWriter, tok token, id string) {
	sub, ok := s.lookupSub(w, tok, id)
	if !ok {
		return
	}
	s.mu.Lock()
	since, status := int64(len(sub.events)), sub.status
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(s.notification(sub, fhir.NotificationQueryState, status, since, nil, false))
}

func (s *FHIRSim) subscriptionEvents(w http.ResponseWriter, r *http.Request, tok token, id string) {
	sub, ok := s.lookupSub(w, tok, id)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, _ := strconv.ParseInt(q.Get("eventsSinceNumber"), 10, 64)
	to, err := strconv.ParseInt(q.Get("eventsUntilNumber"), 10, 64)
	s.mu.Lock()
	all := append([]simEvent(nil), sub.events...)
	status := sub.status
	s.mu.Unlock()
	if err != nil || to > int64(len(all)) {
		to = int64(len(all))
	}
	from = max(from, 1)
	var evs []simEvent
	for _, ev := range all {
		if ev.n >= from && ev.n <= to {
			evs = append(evs, ev)
		}
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(s.notification(sub, fhir.NotificationQueryEvent, status, int64(len(all)), evs, q.Get("content") != fhir.PayloadIDOnly))
}

// subscriptionCapability is the CapabilityStatement's Subscription entry
// (topics as Backport extensions, $status and $events) or "".
func (s *FHIRSim) subscriptionCapability() string {
	if !s.cfg.Subscriptions.Enabled {
		return ""
	}
	var types []string
	for t := range searchParams {
		types = append(types, t)
	}
	sort.Strings(types)
	var ext []string
	for _, t := range types {
		ext = append(ext, fmt.Sprintf(`{"url":"%s","valueCanonical":"%s"}`, fhir.ExtTopicCanonical, TopicURL(t)))
	}
	ops := `{"name":"status","definition":"http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"}`
	if s.cfg.Subscriptions.Events {
		ops += `,{"name":"events","definition":"http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"}`
	}
	return fmt.Sprintf(`{"type":"Subscription","extension":[%s],"interaction":[{"code":"create"},{"code":"read"}],"operation":[%s]}`, strings.Join(ext, ","), ops)
}
