package fhir

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Topic-based subscriptions on R4 (the Subscriptions R5 Backport IG): a
// notification is a Bundle of type history whose first entry is a
// SubscriptionStatus (a Parameters resource on R4) and whose other
// entries are the focus resources (payload full-resource).

// Backport IG extension and profile URLs.
const (
	BackportBase           = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
	ExtPayloadContent      = BackportBase + "backport-payload-content"
	ExtHeartbeatPeriod     = BackportBase + "backport-heartbeat-period"
	ExtTopicCanonical      = BackportBase + "capabilitystatement-subscriptiontopic-canonical"
	ProfileSubscriptionR4  = BackportBase + "backport-subscription"
	ProfileStatusR4        = BackportBase + "backport-subscription-status-r4"
	OperationEvents        = "events" // Subscription/<id>/$events
	OperationStatus        = "status" // Subscription/<id>/$status
	PayloadFullResource    = "full-resource"
	PayloadIDOnly          = "id-only"
	PayloadEmpty           = "empty"
	NotificationHandshake  = "handshake"
	NotificationHeartbeat  = "heartbeat"
	NotificationEventType  = "event-notification"
	NotificationQueryEvent = "query-event"
	NotificationQueryState = "query-status"
)

// Notification is one subscription-status Bundle: the status and the
// events it reports, with the focus resources it carries.
type Notification struct {
	Subscription string // the Subscription reference, as given
	Topic        string
	Status       string // requested, active, error, off
	Type         string // handshake, heartbeat, event-notification, query-status, query-event
	// EventsSinceStart is events-since-subscription-start: the number of
	// the last event the server sent for this subscription (gap detection).
	EventsSinceStart int64
	Events           []NotificationEvent
	// Resources are the Bundle's other entries (full-resource payload).
	Resources []*Resource
}

// NotificationEvent is one notification-event of a status.
type NotificationEvent struct {
	Number    int64
	Timestamp time.Time // zero when absent
	Focus     string    // reference to the focus resource (may be absolute)
}

// SubscriptionID is the id part of the Subscription reference.
func (n *Notification) SubscriptionID() string { return Reference{Reference: n.Subscription}.ID() }

type parameter struct {
	Name           string      `json:"name"`
	ValueString    *string     `json:"valueString"`
	ValueCode      *string     `json:"valueCode"`
	ValueCanonical *string     `json:"valueCanonical"`
	ValueInstant   *string     `json:"valueInstant"`
	ValueInteger   json.Number `json:"valueInteger"`
	ValueInt64     json.Number `json:"valueInteger64"`
	ValueUnsigned  json.Number `json:"valueUnsignedInt"`
	ValueReference *Reference  `json:"valueReference"`
	Part           []parameter `json:"part"`
}

func (p parameter) text() string {
	for _, s := range []*string{p.ValueString, p.ValueCode, p.ValueCanonical, p.ValueInstant} {
		if s != nil {
			return *s
		}
	}
	for _, n := range []json.Number{p.ValueInteger, p.ValueInt64, p.ValueUnsigned} {
		if n != "" {
			return string(n)
		}
	}
	if p.ValueReference != nil {
		return p.ValueReference.Reference
	}
	return ""
}

// ParseNotification reads a subscription notification (or the answer of
// $status / $events, which have the same shape). Errors are *Error naming
// the path, never a value.
func ParseNotification(raw []byte) (*Notification, error) {
	b, err := ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	if b.Type != "history" && b.Type != "searchset" {
		return nil, &Error{Code: "invalid", Path: "Bundle.type", Msg: "a notification is a history Bundle"}
	}
	if len(b.Entries) == 0 || b.Entries[0].Resource == nil || b.Entries[0].Resource.Type != "Parameters" {
		return nil, &Error{Code: "required", Path: "Bundle.entry[0].resource", Msg: "no SubscriptionStatus (Parameters) first entry"}
	}
	var ps struct {
		Parameter []parameter `json:"parameter"`
	}
	if err := json.Unmarshal(b.Entries[0].Resource.Raw, &ps); err != nil {
		return nil, &Error{Code: "structure", Path: "Bundle.entry[0].resource.parameter", Msg: "SubscriptionStatus elements of the wrong JSON type"}
	}
	n := &Notification{}
	for i, p := range ps.Parameter {
		path := fmt.Sprintf("Bundle.entry[0].resource.parameter[%d]", i)
		switch p.Name {
		case "subscription":
			n.Subscription = p.text()
		case "topic":
			n.Topic = p.text()
		case "status":
			n.Status = p.text()
		case "type":
			n.Type = p.text()
		case "events-since-subscription-start":
			if n.EventsSinceStart, err = number(p.text(), path); err != nil {
				return nil, err
			}
		case "notification-event":
			ev := NotificationEvent{}
			for j, q := range p.Part {
				qpath := fmt.Sprintf("%s.part[%d]", path, j)
				switch q.Name {
				case "event-number":
					if ev.Number, err = number(q.text(), qpath); err != nil {
						return nil, err
					}
				case "timestamp":
					ev.Timestamp, _ = time.Parse(time.RFC3339Nano, q.text())
				case "focus":
					ev.Focus = q.text()
				}
			}
			n.Events = append(n.Events, ev)
		}
	}
	switch {
	case n.Subscription == "":
		return nil, &Error{Code: "required", Path: "Bundle.entry[0].resource.parameter(subscription)", Msg: "no subscription"}
	case n.Type == "":
		return nil, &Error{Code: "required", Path: "Bundle.entry[0].resource.parameter(type)", Msg: "no notification type"}
	}
	for _, e := range b.Entries[1:] {
		if e.Resource != nil {
			n.Resources = append(n.Resources, e.Resource)
		}
	}
	return n, nil
}

func number(s, path string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return 0, &Error{Code: "value", Path: path, Msg: "not a non-negative integer"}
	}
	return v, nil
}

// SubscriptionRequest is what Sinew asks a server to create: a rest-hook
// Subscription on a topic, its notifications carrying Header (the secret
// the endpoint checks).
type SubscriptionRequest struct {
	Topic     string
	Endpoint  string
	Header    string // e.g. "Authorization: Bearer <secret>"
	Heartbeat time.Duration
	Content   string // full-resource (default), id-only
	Reason    string
}

// JSON is the R4 Subscription resource (Backport profile) for r.
func (r SubscriptionRequest) JSON() []byte {
	content := r.Content
	if content == "" {
		content = PayloadFullResource
	}
	ch := map[string]any{
		"type":     "rest-hook",
		"endpoint": r.Endpoint,
		"payload":  "application/fhir+json",
		"_payload": map[string]any{"extension": []any{map[string]any{"url": ExtPayloadContent, "valueCode": content}}},
	}
	if r.Header != "" {
		ch["header"] = []string{r.Header}
	}
	if r.Heartbeat > 0 {
		ch["extension"] = []any{map[string]any{"url": ExtHeartbeatPeriod, "valueUnsignedInt": int(r.Heartbeat.Seconds())}}
	}
	reason := r.Reason
	if reason == "" {
		reason = "Sinew FHIR intake"
	}
	b, _ := json.Marshal(map[string]any{
		"resourceType": "Subscription",
		"meta":         map[string]any{"profile": []string{ProfileSubscriptionR4}},
		"status":       "requested",
		"reason":       reason,
		"criteria":     r.Topic,
		"channel":      ch,
	})
	return b
}

// SubscriptionSpec is what a server reads back from a Subscription
// request (epicsim's subscription manager).
type SubscriptionSpec struct {
	ID        string
	Topic     string
	Endpoint  string
	Headers   []string
	Heartbeat time.Duration
	Content   string
}

// ParseSubscription reads an R4 Backport Subscription.
func ParseSubscription(raw []byte) (*SubscriptionSpec, error) {
	r, err := Parse(raw, ParseOptions{AllowNoID: true})
	if err != nil {
		return nil, err
	}
	if r.Type != "Subscription" {
		return nil, &Error{Code: "invalid", Path: "resourceType", Msg: "not a Subscription"}
	}
	type ext struct {
		URL              string      `json:"url"`
		ValueCode        string      `json:"valueCode"`
		ValueUnsignedInt json.Number `json:"valueUnsignedInt"`
	}
	var s struct {
		Criteria string `json:"criteria"`
		Channel  struct {
			Type       string   `json:"type"`
			Endpoint   string   `json:"endpoint"`
			Header     []string `json:"header"`
			Extension  []ext    `json:"extension"`
			PayloadExt struct {
				Extension []ext `json:"extension"`
			} `json:"_payload"`
		} `json:"channel"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, &Error{Code: "structure", Path: "Subscription", Msg: "elements of the wrong JSON type"}
	}
	switch {
	case s.Criteria == "":
		return nil, &Error{Code: "required", Path: "Subscription.criteria", Msg: "no topic"}
	case s.Channel.Type != "rest-hook":
		return nil, &Error{Code: "not-supported", Path: "Subscription.channel.type", Msg: "only rest-hook channels"}
	case s.Channel.Endpoint == "":
		return nil, &Error{Code: "required", Path: "Subscription.channel.endpoint", Msg: "no endpoint"}
	}
	sp := &SubscriptionSpec{ID: r.ID, Topic: s.Criteria, Endpoint: s.Channel.Endpoint, Headers: s.Channel.Header, Content: PayloadFullResource}
	for _, e := range s.Channel.Extension {
		if e.URL == ExtHeartbeatPeriod {
			if n, err := strconv.Atoi(string(e.ValueUnsignedInt)); err == nil && n > 0 {
				sp.Heartbeat = time.Duration(n) * time.Second
			}
		}
	}
	for _, e := range s.Channel.PayloadExt.Extension {
		if e.URL == ExtPayloadContent && e.ValueCode != "" {
			sp.Content = e.ValueCode
		}
	}
	return sp, nil
}
