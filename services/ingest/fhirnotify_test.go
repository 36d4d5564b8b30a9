package ingest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/ingest"
)

const notifySecret = "test-notify-secret-0123456789"

// notifyEnv is fhirEnv with ingest's rest-hook endpoint on real HTTP and
// one subscription on Encounter changes.
func notifyEnv(t *testing.T, subs epicsim.SubscriptionsConfig, heartbeat time.Duration, opts ...func(*ingest.SubscriptionSync)) (*fhirEnv, *ingest.FHIRSync, *httptest.Server) {
	t.Helper()
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Volume = epicsim.FHIRVolume{Patients: 5, Encounters: 12, Days: 3}
	subs.Enabled = true
	simCfg.Subscriptions = subs
	e := startFHIR(t, simCfg)
	t.Cleanup(e.sim.Close)
	var f *ingest.FHIRSync
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.NotifyHandler().ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	e.cfg.Notify = ingest.NotifyConfig{PublicURL: hs.URL, Subscriptions: []ingest.SubscriptionSync{{
		Name: "encounters", Type: "Encounter", Topic: epicsim.TopicURL("Encounter"), Secret: notifySecret, Heartbeat: heartbeat,
	}}}
	for _, o := range opts {
		o(&e.cfg.Notify.Subscriptions[0])
	}
	f = e.sync(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.EnsureSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		active := false
		for _, st := range e.sim.SubscriptionIDs() {
			active = st == "active"
		}
		if active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription not active: %v", e.sim.SubscriptionIDs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e, f, hs
}

// versions reads FHIR_IN: resourceType/id → the versionIds stored, in order.
func (e *fhirEnv) versions(t *testing.T) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := e.js.Stream(ctx, streams.FHIRIn)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	got := map[string][]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev sinewv1.FhirResourceReceived
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		k := ev.GetResourceType() + "/" + ev.GetResourceId()
		got[k] = append(got[k], ev.GetVersionId())
	}
	return got
}

// TestFHIRNotificationGapRecoveredByEvents: the server's notification
// of event 2 is lost; event 3's notification shows the gap
// (eventNumber 3 after 1) and ingest fetches event 2 by $events. Every
// updated Encounter's new version is stored exactly once.
func TestFHIRNotificationGapRecoveredByEvents(t *testing.T) {
	e, f, _ := notifyEnv(t, epicsim.SubscriptionsConfig{Events: true, DropEvents: []int64{2}}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	encs := e.sim.Resources("Encounter")
	for _, k := range encs[:3] {
		if err := e.sim.Update(ctx, "Encounter", strings.TrimPrefix(k, "Encounter/")); err != nil {
			t.Fatal(err)
		}
	}
	got := e.versions(t)
	for _, k := range encs[:3] {
		if v := got[k]; len(v) != 1 || v[0] != "2" {
			t.Errorf("%s stored as versions %v, want [2]", k, v)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d resources stored, want 3: %v", len(got), got)
	}
	if st := f.Stats(); st.Gaps != 1 || st.RecoveredByEvents != 1 || st.Published != 3 {
		t.Errorf("stats %+v", st)
	}
	// The same notification again (a server's resend) stores nothing new.
	if err := e.sim.Update(ctx, "Encounter", strings.TrimPrefix(encs[3], "Encounter/")); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Gaps != 1 || st.Published != 4 {
		t.Errorf("after a contiguous event: stats %+v", st)
	}
}

// TestFHIRNotificationGapRecoveredByRereadWithoutEvents: a server
// without $events; the lost notification's resource is recovered by a
// re-read (paged search of the type), stored once in its new version.
func TestFHIRNotificationGapRecoveredByRereadWithoutEvents(t *testing.T) {
	e, f, _ := notifyEnv(t, epicsim.SubscriptionsConfig{Events: false, DropEvents: []int64{1}}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	encs := e.sim.Resources("Encounter")
	for _, k := range encs[:2] {
		if err := e.sim.Update(ctx, "Encounter", strings.TrimPrefix(k, "Encounter/")); err != nil {
			t.Fatal(err)
		}
	}
	got := e.versions(t)
	for _, k := range encs[:2] {
		if v := got[k]; len(v) != 1 || v[0] != "2" {
			t.Errorf("%s stored as versions %v, want [2]", k, v)
		}
	}
	for _, k := range encs[2:] {
		if v := got[k]; len(v) != 1 || v[0] != "1" {
			t.Errorf("%s (re-read, unchanged) stored as versions %v, want [1]", k, v)
		}
	}
	if st := f.Stats(); st.Gaps != 1 || st.RecoveredByReread != 1 || st.RecoveredByEvents != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFHIRNotificationSilenceAfterLostEventIsRecovered: heartbeats stop
// and the only event's notification is lost; the watchdog notices the
// silence, asks $status, learns of event 1 and recovers it by $events.
func TestFHIRNotificationSilenceAfterLostEventIsRecovered(t *testing.T) {
	e, f, _ := notifyEnv(t, epicsim.SubscriptionsConfig{Events: true, DropEvents: []int64{1}, NoHeartbeats: true}, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	enc := e.sim.Resources("Encounter")[0]
	if err := e.sim.Update(ctx, "Encounter", strings.TrimPrefix(enc, "Encounter/")); err != nil {
		t.Fatal(err)
	}
	if err := f.CheckSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.versions(t)) != 0 {
		t.Fatal("stored before the silence was long enough")
	}
	time.Sleep(2100 * time.Millisecond)
	if err := f.CheckSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	if v := e.versions(t)[enc]; len(v) != 1 || v[0] != "2" {
		t.Errorf("%s stored as versions %v, want [2]", enc, v)
	}
	if st := f.Stats(); st.MissedHeartbeats != 1 || st.RecoveredByEvents != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestFHIRNotificationWithoutTheSecretIs401AndAudited: a notification
// without the subscription's bearer secret (or with another) is
// answered 401, stores nothing and leaves an audit record.
func TestFHIRNotificationWithoutTheSecretIs401AndAudited(t *testing.T) {
	e, f, hs := notifyEnv(t, epicsim.SubscriptionsConfig{Events: true}, 0)
	body := `{"resourceType":"Bundle","type":"history","entry":[]}`
	for _, auth := range []string{"", "Bearer wrong-secret-0123456789", notifySecret} {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+ingest.NotifyPath+"encounters", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("authorization %q: HTTP %d, want 401", auth, resp.StatusCode)
		}
	}
	if st := f.Stats(); st.Unauthenticated != 3 || st.Published != 0 {
		t.Errorf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refused := 0
	err := audit.Read(ctx, e.js, "audit.>", func(en audit.Entry) error {
		for _, ev := range en.Events {
			if ev.GetAction() == "notify" && ev.GetOutcome() == "refused" {
				refused++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if refused != 3 {
		t.Errorf("%d refusals audited, want 3", refused)
	}
}

// TestFHIRNotificationHeartbeatRevealsLostEvent: the only event's
// notification is lost but heartbeats go on; the next heartbeat's
// events-since-subscription-start shows the gap and ingest recovers it.
func TestFHIRNotificationHeartbeatRevealsLostEvent(t *testing.T) {
	e, f, _ := notifyEnv(t, epicsim.SubscriptionsConfig{Events: true, DropEvents: []int64{1}}, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	enc := e.sim.Resources("Encounter")[1]
	if err := e.sim.Update(ctx, "Encounter", strings.TrimPrefix(enc, "Encounter/")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.Stats().RecoveredByEvents == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if v := e.versions(t)[enc]; len(v) != 1 || v[0] != "2" {
		t.Errorf("%s stored as versions %v, want [2]", enc, v)
	}
	if st := f.Stats(); st.Gaps != 1 || st.RecoveredByEvents != 1 || st.MissedHeartbeats != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFHIRNotificationIDOnlyReadsEachFocus: with id-only payloads the
// notification names its focus; ingest reads it and stores it once.
func TestFHIRNotificationIDOnlyReadsEachFocus(t *testing.T) {
	e, f, _ := notifyEnv(t, epicsim.SubscriptionsConfig{Events: true}, 0, func(s *ingest.SubscriptionSync) { s.Content = "id-only" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	encs := e.sim.Resources("Encounter")[:2]
	for _, k := range encs {
		if err := e.sim.Update(ctx, "Encounter", strings.TrimPrefix(k, "Encounter/")); err != nil {
			t.Fatal(err)
		}
	}
	got := e.versions(t)
	for _, k := range encs {
		if v := got[k]; len(v) != 1 || v[0] != "2" {
			t.Errorf("%s stored as versions %v, want [2]", k, v)
		}
	}
	if st := f.Stats(); st.Published != 2 || st.Gaps != 0 {
		t.Errorf("stats %+v", st)
	}
}
