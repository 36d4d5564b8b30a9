// Package flowstate is the live state of each flow (staged, active,
// paused): one key per flow in the flow_state bucket, and the pause of the
// flow's own consumers that makes every replica obey it. A staged or paused
// flow's input keeps arriving in JetStream (ingest routes it to the flow's
// subjects) and its consumer is paused server-side, so no replica of
// transform gets any of it until the flow is activated
// (docs/architecture.md, Flow state).
package flowstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Record is one flow's value in flow_state.
type Record struct {
	State  string    `json:"state"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// ErrNoReason refuses a change of state without a reason.
var ErrNoReason = errors.New("flowstate: a change of state needs a reason")

// pauseFor is how far ahead a pause reaches: consumer pause is a deadline,
// and a held flow is held until someone activates it.
const pauseFor = 100 * 365 * 24 * time.Hour

// Store reads and changes flow states.
type Store struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// Open opens the flow_state bucket.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, streams.KVFlowState)
	if err != nil {
		return nil, fmt.Errorf("flowstate: %w", err)
	}
	return &Store{js: js, kv: kv}, nil
}

// Get returns flow's record; ok is false when it was never set.
func (s *Store) Get(ctx context.Context, flow string) (Record, bool, error) {
	e, err := s.kv.Get(ctx, flow)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("flowstate: get %s: %w", flow, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, false, fmt.Errorf("flowstate: %s: %w", flow, err)
	}
	return r, true, nil
}

// Set records flow's new state and pauses or resumes its consumers. The
// record comes first: a pause that fails is applied again by Sync.
func (s *Store) Set(ctx context.Context, f *flows.Flow, state, by, reason string) error {
	if reason == "" {
		return ErrNoReason
	}
	switch state {
	case flows.Staged, flows.Active, flows.Paused:
	default:
		return fmt.Errorf("flowstate: state %q is not staged, active or paused", state)
	}
	b, err := json.Marshal(Record{State: state, By: by, Reason: reason, At: time.Now().UTC()})
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, f.ID, b); err != nil {
		return fmt.Errorf("flowstate: put %s: %w", f.ID, err)
	}
	return s.apply(ctx, f, state)
}

// Input is one durable consumer that holds a flow's input, and its stream.
type Input struct {
	Stream, Consumer string
}

// Inputs are the durable consumers that hold flow f's input: its HL7
// consumer (hl7 settings), its batch consumer (intake drops or SFTP), its
// FHIR consumer (intake.fhir) and its loader consumer (every flow:
// streams.Options.LoadFlows), so that commands already on FUSION_CMD wait too. Input consumers come first:
// a pause stops new commands before it stops their posting.
func Inputs(f *flows.Flow) []Input {
	var in []Input
	if f.HL7 != nil {
		in = append(in, Input{streams.HL7In, streams.TransformHL7Flow(f.ID)})
	}
	if len(f.Intake.Drops) > 0 || len(f.Intake.SFTP) > 0 {
		in = append(in, Input{streams.BatchIn, streams.TransformBatchFlow(f.ID)})
	}
	if len(f.Intake.FHIR) > 0 {
		in = append(in, Input{streams.FHIRIn, streams.TransformFHIRFlow(f.ID)})
	}
	return append(in, Input{streams.FusionCmd, streams.LoaderFusionFlow(f.ID)})
}

// Consumers are the names of Inputs(f).
func Consumers(f *flows.Flow) []string {
	var names []string
	for _, in := range Inputs(f) {
		names = append(names, in.Consumer)
	}
	return names
}

// apply pauses (staged, paused) or resumes (active) f's consumers.
func (s *Store) apply(ctx context.Context, f *flows.Flow, state string) error {
	for _, c := range Inputs(f) {
		var err error
		if state == flows.Active {
			_, err = s.js.ResumeConsumer(ctx, c.Stream, c.Consumer)
		} else {
			_, err = s.js.PauseConsumer(ctx, c.Stream, c.Consumer, time.Now().Add(pauseFor))
		}
		if err != nil {
			return fmt.Errorf("flowstate: %s %s: %w", state, c.Consumer, err)
		}
	}
	return nil
}

// Sync makes the server match flow_state for every flow of inv: a flow
// with no record gets flows.yaml's state (by "flows.yaml"), and every
// flow's consumers are paused or resumed to match. It runs after
// streams.Ensure, before any service consumes; it reports the flows it
// seeded.
func (s *Store) Sync(ctx context.Context, inv *flows.Inventory) (seeded []string, err error) {
	for i := range inv.Flows {
		f := &inv.Flows[i]
		r, ok, err := s.Get(ctx, f.ID)
		if err != nil {
			return seeded, err
		}
		if !ok {
			r = Record{State: f.State, By: "flows.yaml", Reason: "first start: the state flows.yaml declares", At: time.Now().UTC()}
			b, _ := json.Marshal(r)
			if _, err := s.kv.Create(ctx, f.ID, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
				return seeded, fmt.Errorf("flowstate: seed %s: %w", f.ID, err)
			} else if err == nil {
				seeded = append(seeded, f.ID)
			} else if r, _, err = s.Get(ctx, f.ID); err != nil {
				return seeded, err
			}
		}
		if err := s.apply(ctx, f, r.State); err != nil {
			return seeded, err
		}
	}
	return seeded, nil
}

// States returns every flow's current state: flow_state's, else flows.yaml's.
func (s *Store) States(ctx context.Context, inv *flows.Inventory) (map[string]Record, error) {
	out := map[string]Record{}
	for _, f := range inv.Flows {
		r, ok, err := s.Get(ctx, f.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			r = Record{State: f.State, By: "flows.yaml"}
		}
		out[f.ID] = r
	}
	return out, nil
}
