// Package hl7receipt builds the HL7_IN receipt (sinew.v1.Hl7Received) of
// a parsed HL7 v2 message: ingest stores what it builds, and the mappers'
// golden tests build their events with it, so they map exactly what ingest
// produces (flow, charset, body hash and all).
package hl7receipt

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/ids"
)

// Receipt is what the receiver knows besides the message.
type Receipt struct {
	// MsgID is the message's Nats-Msg-Id and idempotency key (MsgID).
	MsgID string
	// BodySHA256 is the body hash (BodyHash).
	BodySHA256 string
	// Flow is the flow the sending application routes to.
	Flow string
	// Listener is the MLLP address it arrived on.
	Listener string
	// Reused: its control id was seen before with another body.
	Reused     bool
	ReceivedAt time.Time
}

// BodyHash is the hex of the first 16 bytes of the SHA-256 of m as
// written (segment terminators normalised).
func BodyHash(m *hl7.Message) string {
	h := sha256.New()
	_, _ = m.WriteTo(h)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// MsgIDPrefix begins every MsgID.
const MsgIDPrefix = "hl7:"

// MsgID is the id a message is stored under: sender (facility and
// application) and control id, or the body hash when it has none.
func MsgID(m *hl7.Message, bodyHex string) string {
	id := MsgIDPrefix + m.SendingFacility() + ":" + m.SendingApplication() + ":" + m.ControlID()
	if m.ControlID() == "" {
		id += ":" + bodyHex
	}
	return id
}

// New builds the receipt of m (raw as received).
func New(m *hl7.Message, raw []byte, r Receipt) *sinewv1.Hl7Received {
	ev := &sinewv1.Hl7Received{
		Envelope: &sinewv1.Envelope{
			EventId: ids.EventID(r.MsgID), Flow: r.Flow, SourceSystem: "hl7:" + m.SendingApplication(),
			SourceId: m.ControlID(), IdempotencyKey: r.MsgID, ReceivedAt: timestamppb.New(r.ReceivedAt),
			BusinessKeys: sinewv1.KeysOf("body_sha256", r.BodySHA256, "control_id", m.ControlID(),
				"facility", m.SendingFacility(), "message_type", m.Type()+"^"+m.Event()),
		},
		Raw: raw, SendingApplication: m.SendingApplication(), SendingFacility: m.SendingFacility(),
		MessageType: m.Type(), TriggerEvent: m.Event(), ControlId: m.ControlID(), Version: m.Version(),
		Charset: m.Charset().Name, Listener: r.Listener, ControlIdReused: r.Reused,
		RawSize: int64(len(raw)),
	}
	for _, w := range m.Warnings() {
		ev.Warnings = append(ev.Warnings, w.String())
	}
	if r.Reused {
		ev.Warnings = append(ev.Warnings, "control-id-reused: MSH-10 seen before with a different body")
	}
	return ev
}
