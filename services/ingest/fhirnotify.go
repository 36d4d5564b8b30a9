package ingest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// NotifyConfig is the rest-hook endpoint for topic-based subscriptions
// (Subscriptions R5 Backport IG on R4) and the subscriptions ingest keeps
// on the server. Off while Subscriptions is empty.
type NotifyConfig struct {
	// PublicURL is where the server reaches ingest (scheme://host:port);
	// each subscription's endpoint is PublicURL + NotifyPath + its name.
	PublicURL string `yaml:"public_url"`
	// Addr serves the endpoint on its own listener; without it the
	// endpoint is on the host's mux (sinew up's HTTP listener).
	Addr          string             `yaml:"addr"`
	Subscriptions []SubscriptionSync `yaml:"subscriptions"`
}

// SubscriptionSync is one subscription: a topic whose focus resources
// (of Type) are committed to fhir.in.<Type>.
type SubscriptionSync struct {
	// Name is the endpoint's last path segment and the KV key's.
	Name  string `yaml:"name"`
	Type  string `yaml:"type"`
	Topic string `yaml:"topic"`
	// Secret (or SecretFile) is the bearer token the Subscription carries
	// in channel.header; a notification without it is refused 401.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Heartbeat asked of the server; silence longer than twice this
	// makes ingest ask $status (0: no heartbeats).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Content is the payload asked for: full-resource (default) or
	// id-only (each focus is read).
	Content string `yaml:"content"`
	// Reread is the window a gap is re-read over when the server has no
	// $events: a paged search of Type on its date parameter (8 days).
	Reread time.Duration `yaml:"reread"`
}

// NotifyPath is the rest-hook endpoint's path prefix.
const NotifyPath = "/fhir/notify/"

const channelNotify = "notification"

// subState is a subscription's progress in KV (key subscription.<name>):
// the server's id for it and the number of the last event up to which
// every event's focus is committed.
type subState struct {
	ID       string    `json:"id"`
	Active   bool      `json:"active"`
	Events   int64     `json:"events"`
	LastSeen time.Time `json:"last_seen"`
}

func subKey(name string) string { return "subscription." + streams.Token(name) }

func (f *FHIRSync) loadSub(ctx context.Context, name string) (*subState, error) {
	e, err := f.kv.Get(ctx, subKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &subState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("subscription state: %w", err)
	}
	var st subState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("subscription state: %w", err)
	}
	return &st, nil
}

func (f *FHIRSync) saveSub(ctx context.Context, name string, st *subState) error {
	b, _ := json.Marshal(st)
	if _, err := f.kv.Put(ctx, subKey(name), b); err != nil {
		return fmt.Errorf("subscription state: %w", err)
	}
	return nil
}

func (c *NotifyConfig) validate() error {
	seen := map[string]bool{}
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		if s.SecretFile != "" && s.Secret == "" {
			b, err := os.ReadFile(s.SecretFile)
			if err != nil {
				return fmt.Errorf("ingest: fhir.notify.subscriptions[%d].secret_file: %w", i, err)
			}
			s.Secret = strings.TrimSpace(string(b))
		}
		switch {
		case s.Name == "" || s.Type == "" || s.Topic == "":
			return fmt.Errorf("ingest: fhir.notify.subscriptions[%d]: name, type and topic are required", i)
		case len(s.Secret) < 16:
			return fmt.Errorf("ingest: fhir.notify.subscriptions[%d].secret: at least 16 characters are required", i)
		case seen[s.Name]:
			return fmt.Errorf("ingest: fhir.notify.subscriptions[%d].name: given twice", i)
		}
		seen[s.Name] = true
		if s.Reread <= 0 {
			s.Reread = 8 * 24 * time.Hour
		}
	}
	if len(c.Subscriptions) > 0 && c.PublicURL == "" {
		return errors.New("ingest: fhir.notify.public_url is required with subscriptions")
	}
	return nil
}

func (f *FHIRSync) subscription(name string) (SubscriptionSync, bool) {
	for _, s := range f.cfg.Notify.Subscriptions {
		if s.Name == name {
			return s, true
		}
	}
	return SubscriptionSync{}, false
}

// EnsureSubscriptions creates on the server each subscription that has
// no id in KV yet (a rest-hook on its topic carrying the secret).
func (f *FHIRSync) EnsureSubscriptions(ctx context.Context) error {
	var errs []error
	for _, s := range f.cfg.Notify.Subscriptions {
		f.mu.Lock()
		off := f.disabledSubs[s.Name]
		f.mu.Unlock()
		if off {
			continue
		}
		if err := f.ensureSub(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("subscription %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (f *FHIRSync) ensureSub(ctx context.Context, s SubscriptionSync) error {
	// Held over the create: the server's handshake waits for the id.
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	st, err := f.loadSub(ctx, s.Name)
	if err != nil || st.ID != "" {
		return err
	}
	id, err := f.client.CreateSubscription(ctx, f.cfg.BaseURL, fhir.SubscriptionRequest{
		Topic: s.Topic, Endpoint: strings.TrimRight(f.cfg.Notify.PublicURL, "/") + NotifyPath + s.Name,
		Header: "Authorization: Bearer " + s.Secret, Heartbeat: s.Heartbeat, Content: s.Content,
	})
	if err != nil {
		return err
	}
	f.bus.Logger().Info().Str("subscription", s.Name).Str("type", s.Type).Msg("FHIR subscription created; waiting for its handshake")
	*st = subState{ID: id, LastSeen: time.Now().UTC()}
	return f.saveSub(ctx, s.Name, st)
}

// NotifyHandler is the rest-hook endpoint (NotifyPath + name). A
// notification is answered 200 only once its focus resources are
// committed (a 5xx makes the server resend); one without the
// subscription's secret is answered 401 and audited.
func (f *FHIRSync) NotifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, NotifyPath)
		s, ok := f.subscription(name)
		if !ok || r.Method != http.MethodPost {
			notifyOutcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityError, "not-found", "no such subscription endpoint"))
			return
		}
		ctx := r.Context()
		got := []byte(r.Header.Get("Authorization"))
		want := []byte("Bearer " + s.Secret)
		if subtle.ConstantTimeCompare(got, want) != 1 {
			f.notified.WithLabelValues(s.Name, "unknown", "unauthenticated").Inc()
			f.count(func(st *FHIRStats) { st.Unauthenticated++ })
			f.bus.Logger().Warn().Str("subscription", s.Name).Bool("authorization_present", len(got) > 0).Msg("FHIR notification refused: not authenticated")
			_ = f.bus.Audit().Write(ctx, &sinewv1.AuditEvent{
				Actor: f.bus.Service(), Action: "notify", Flow: f.cfg.Flows[s.Type], Hop: streams.HopIngest, Outcome: "refused",
				Stream: streams.FHIRIn, Subject: streams.FHIRSubject(s.Type),
				BusinessKeys: sinewv1.Keys(map[string]string{"subscription": s.Name, "resource_type": s.Type, "reason": "unauthenticated"}),
				Detail:       "notification without the subscription's secret refused (401)",
			})
			w.Header().Set("WWW-Authenticate", `Bearer realm="sinew-fhir-notify"`)
			notifyOutcome(w, http.StatusUnauthorized, fhir.NewOutcome(fhir.SeverityError, "login", "the subscription's bearer secret is required"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			notifyOutcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "structure", "unreadable body"))
			return
		}
		n, err := fhir.ParseNotification(body)
		if err != nil {
			f.notified.WithLabelValues(s.Name, "unknown", "rejected").Inc()
			var fe *fhir.Error
			if errors.As(err, &fe) {
				notifyOutcome(w, http.StatusBadRequest, fe.Outcome())
				return
			}
			notifyOutcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "structure", "not a notification"))
			return
		}
		status, oo := f.notification(ctx, s, n)
		f.notified.WithLabelValues(s.Name, n.Type, map[bool]string{true: "ok", false: "failed"}[status == http.StatusOK]).Inc()
		if oo != nil {
			notifyOutcome(w, status, oo)
			return
		}
		w.WriteHeader(status)
	})
}

func notifyOutcome(w http.ResponseWriter, status int, o *fhir.OperationOutcome) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write(o.JSON())
}

// notification handles one authenticated notification under the lock.
func (f *FHIRSync) notification(ctx context.Context, s SubscriptionSync, n *fhir.Notification) (int, *fhir.OperationOutcome) {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	st, err := f.loadSub(ctx, s.Name)
	if err != nil {
		return http.StatusServiceUnavailable, fhir.NewOutcome(fhir.SeverityError, "transient", "state unavailable")
	}
	switch {
	case st.ID == "" && n.Type == fhir.NotificationHandshake:
		st.ID = n.SubscriptionID() // the handshake came before the create's answer was kept
	case st.ID != n.SubscriptionID():
		return http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityError, "not-found", "not the subscription this endpoint serves", "parameter(subscription)")
	}
	st.LastSeen = time.Now().UTC()
	log := f.bus.Logger().With().Str("subscription", s.Name).Str("notification", n.Type).Logger()
	switch n.Type {
	case fhir.NotificationHandshake:
		st.Active = true
		log.Info().Msg("FHIR subscription handshake: active")
	case fhir.NotificationHeartbeat:
		st.Active = true
		if n.EventsSinceStart > st.Events {
			f.recover(ctx, s, st, n.EventsSinceStart)
		}
	case fhir.NotificationEventType, fhir.NotificationQueryEvent:
		st.Active = true
		lo := n.EventsSinceStart
		for _, ev := range n.Events {
			lo = min(lo, ev.Number)
		}
		// Events before this notification's that never came: a gap.
		if lo > st.Events+1 {
			f.recover(ctx, s, st, lo-1)
		}
		if err := f.commitEvents(ctx, s, n); err != nil {
			log.Warn().Err(err).Msg("FHIR notification not committed; the server will resend it")
			return http.StatusServiceUnavailable, fhir.NewOutcome(fhir.SeverityError, "transient", "not committed; send again")
		}
		if st.Events >= lo-1 {
			st.Events = max(st.Events, n.EventsSinceStart)
			for _, ev := range n.Events {
				st.Events = max(st.Events, ev.Number)
			}
		}
	default:
		log.Info().Msg("FHIR notification of a type ingest does not act on")
	}
	if err := f.saveSub(ctx, s.Name, st); err != nil {
		return http.StatusServiceUnavailable, fhir.NewOutcome(fhir.SeverityError, "transient", "state unavailable")
	}
	return http.StatusOK, nil
}

// commitEvents commits a notification's focus resources: those the
// Bundle carries, and a read of each focus it only names (id-only).
func (f *FHIRSync) commitEvents(ctx context.Context, s SubscriptionSync, n *fhir.Notification) error {
	have := map[string]bool{}
	var rs []*fhir.Resource
	for _, r := range n.Resources {
		have[r.Key()] = true
		rs = append(rs, r)
	}
	for _, ev := range n.Events {
		if ev.Focus == "" || have[focusKey(ev.Focus)] {
			continue
		}
		r, err := f.client.Read(ctx, f.absolute(ev.Focus))
		if err != nil {
			return fmt.Errorf("read focus: %w", err)
		}
		have[r.Key()] = true
		rs = append(rs, r)
	}
	for _, r := range rs {
		if err := f.publish(ctx, r, channelNotify); err != nil {
			return err
		}
	}
	if len(rs) > 0 {
		return f.audit(ctx, "notification", s.Type, rs)
	}
	return nil
}

// focusKey is Type/id of a (possibly absolute) reference.
func focusKey(ref string) string {
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if len(parts) < 2 {
		return ref
	}
	return parts[len(parts)-2] + "/" + parts[len(parts)-1]
}

func (f *FHIRSync) absolute(ref string) string {
	if strings.Contains(ref, "://") {
		return ref
	}
	return strings.TrimRight(f.cfg.BaseURL, "/") + "/" + ref
}

// recover fetches the events after st.Events up to through: $events
// where the server has it, else a re-read of the type over s.Reread
// (what was committed already is dropped as duplicate). st.Events moves
// only when the gap is closed; else a later heartbeat or check tries again.
func (f *FHIRSync) recover(ctx context.Context, s SubscriptionSync, st *subState, through int64) {
	from := st.Events + 1
	log := f.bus.Logger().With().Str("subscription", s.Name).Int64("from_event", from).Int64("through_event", through).Logger()
	log.Warn().Msg("FHIR notification gap: recovering the missed events")
	f.count(func(x *FHIRStats) { x.Gaps++ })
	f.mu.Lock()
	noEvents := f.noEvents[s.Name]
	f.mu.Unlock()
	if !noEvents {
		n, err := f.client.SubscriptionEvents(ctx, f.cfg.BaseURL, st.ID, from, through)
		var oe *fhir.OutcomeError
		switch {
		case err == nil:
			if err := f.commitEvents(ctx, s, n); err != nil {
				log.Warn().Err(err).Msg("FHIR gap recovery by $events failed; retried later")
				return
			}
			st.Events = max(st.Events, through)
			f.count(func(x *FHIRStats) { x.RecoveredByEvents++ })
			log.Info().Msg("FHIR notification gap recovered by $events")
			return
		case errors.As(err, &oe) && oe.Class != fhir.Retryable:
			// The server has no $events: re-read from now on.
			f.mu.Lock()
			f.noEvents[s.Name] = true
			f.mu.Unlock()
			log.Info().Int("status", oe.Status).Msg("FHIR server has no $events; the gap is re-read by search")
		default:
			log.Warn().Err(err).Msg("FHIR gap recovery by $events failed; retried later")
			return
		}
	}
	search := SearchSync{Type: s.Type, DateParam: "date"}
	f.mu.Lock()
	searches := f.cfg.Search
	if ss, ok := f.rereads[s.Type]; ok {
		search = ss
	}
	f.mu.Unlock()
	for _, ss := range searches {
		if ss.Type == s.Type {
			search = ss
		}
	}
	if search.DateParam == "" {
		search.DateParam = "date"
	}
	now := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	if err := f.window(ctx, search, now.Add(-s.Reread), now, 0); err != nil {
		log.Warn().Err(err).Msg("FHIR gap re-read failed; retried later")
		return
	}
	st.Events = max(st.Events, through)
	f.count(func(x *FHIRStats) { x.RecoveredByReread++ })
	log.Info().Msg("FHIR notification gap recovered by a re-read")
}

// CheckSubscriptions is the heartbeat watchdog: a subscription silent
// for more than twice its heartbeat is asked $status, and events the
// server counts beyond those committed are recovered. A subscription
// the server no longer knows (or reports in error / off) is created again.
func (f *FHIRSync) CheckSubscriptions(ctx context.Context) error {
	var errs []error
	for _, s := range f.cfg.Notify.Subscriptions {
		if err := f.checkSub(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("subscription %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// minHeartbeat is the shortest heartbeat asked (0: none).
func (f *FHIRSync) minHeartbeat() time.Duration {
	var hb time.Duration
	for _, s := range f.cfg.Notify.Subscriptions {
		if s.Heartbeat > 0 && (hb == 0 || s.Heartbeat < hb) {
			hb = s.Heartbeat
		}
	}
	return hb
}

func (f *FHIRSync) checkSub(ctx context.Context, s SubscriptionSync) error {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	st, err := f.loadSub(ctx, s.Name)
	if err != nil || st.ID == "" || s.Heartbeat <= 0 || time.Since(st.LastSeen) <= 2*s.Heartbeat {
		return err
	}
	f.count(func(x *FHIRStats) { x.MissedHeartbeats++ })
	f.bus.Logger().Warn().Str("subscription", s.Name).Int64("silent_ms", time.Since(st.LastSeen).Milliseconds()).Msg("FHIR subscription silent past its heartbeat: asking $status")
	n, err := f.client.SubscriptionStatus(ctx, f.cfg.BaseURL, st.ID)
	var oe *fhir.OutcomeError
	switch {
	case errors.As(err, &oe) && oe.Status == http.StatusNotFound, err == nil && (n.Status == "error" || n.Status == "off"):
		f.bus.Logger().Warn().Str("subscription", s.Name).Msg("FHIR subscription gone or stopped on the server: it is created again")
		// A new subscription numbers its events from 1; what the old one
		// missed is re-read (the gap's recovery without $events).
		old := *st
		*st = subState{}
		if old.Active {
			f.mu.Lock()
			f.noEvents[s.Name] = true
			f.mu.Unlock()
			f.recover(ctx, s, &old, old.Events+1)
			f.mu.Lock()
			delete(f.noEvents, s.Name)
			f.mu.Unlock()
		}
		return f.saveSub(ctx, s.Name, st)
	case err != nil:
		return err
	}
	st.LastSeen = time.Now().UTC()
	if n.EventsSinceStart > st.Events {
		f.recover(ctx, s, st, n.EventsSinceStart)
	}
	return f.saveSub(ctx, s.Name, st)
}
