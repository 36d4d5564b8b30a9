// Code generated from reasons.json by `go test -run TestCatalogueGenerated -update`; DO NOT EDIT.

package reason

const (
	// HL7SegmentSequence segment sequence error: a segment is missing, misplaced or repeated
	HL7SegmentSequence Code = "SINEW-HL7-100"
	// HL7RequiredFieldMissing required field missing
	HL7RequiredFieldMissing Code = "SINEW-HL7-101"
	// HL7DataType data type error: a field does not have its type's form (a date, a number, a coded value)
	HL7DataType Code = "SINEW-HL7-102"
	// HL7TableValueNotFound table value not found: a code is missing from a crosswalk or an HL7 table
	HL7TableValueNotFound Code = "SINEW-HL7-103"
	// HL7ValueTooLong value too long
	HL7ValueTooLong Code = "SINEW-HL7-104"
	// HL7UnsupportedMessageType unsupported message type
	HL7UnsupportedMessageType Code = "SINEW-HL7-200"
	// HL7UnsupportedEvent unsupported event code
	HL7UnsupportedEvent Code = "SINEW-HL7-201"
	// HL7UnsupportedProcessingID unsupported processing id
	HL7UnsupportedProcessingID Code = "SINEW-HL7-202"
	// HL7UnsupportedVersion unsupported version id
	HL7UnsupportedVersion Code = "SINEW-HL7-203"
	// HL7UnknownKey unknown key identifier
	HL7UnknownKey Code = "SINEW-HL7-204"
	// HL7DuplicateKey duplicate key identifier
	HL7DuplicateKey Code = "SINEW-HL7-205"
	// HL7RecordLocked application record locked
	HL7RecordLocked Code = "SINEW-HL7-206"
	// HL7ApplicationError application internal error: the message could not be read or processed
	HL7ApplicationError Code = "SINEW-HL7-207"
	// IngestRejected rejected at ingest (a record from before reason codes)
	IngestRejected Code = "SINEW-INGEST-001"
	// BusUndecodable payload could not be decoded as the consumer's message type
	BusUndecodable Code = "SINEW-BUS-001"
	// BusHandlerPanic the handler panicked on this delivery
	BusHandlerPanic Code = "SINEW-BUS-002"
	// BusRetriesExhausted retries exhausted: the handler failed on every delivery
	BusRetriesExhausted Code = "SINEW-BUS-003"
	// BusPermanent permanent failure without a more specific code
	BusPermanent Code = "SINEW-BUS-004"
	// BusNoRoute no route for the delivery's subject in the service's route table
	BusNoRoute Code = "SINEW-BUS-005"
	// DLQMaxDeliveries max deliveries reached without acknowledgement
	DLQMaxDeliveries Code = "SINEW-DLQ-001"
	// DLQTerminated terminated by a consumer without a dead-letter record of its own
	DLQTerminated Code = "SINEW-DLQ-002"
	// TransformNoMapper no mapper for the message's flow
	TransformNoMapper Code = "SINEW-TRANSFORM-001"
	// TransformBatchInvalid batch manifest invalid or its file missing from the object store
	TransformBatchInvalid Code = "SINEW-TRANSFORM-002"
	// TransformBatchChanged batch already mapped from other bytes: not posted twice
	TransformBatchChanged Code = "SINEW-TRANSFORM-003"
	// TransformBatchRejected batch rejected by validation with findings
	TransformBatchRejected Code = "SINEW-TRANSFORM-004"
	// TransformBodyMissing a large HL7 message's body is missing from the object store hl7_bodies
	TransformBodyMissing Code = "SINEW-TRANSFORM-005"
	// LoaderNoRoute no loader for the command's subject
	LoaderNoRoute Code = "SINEW-LOADER-001"
	// LoaderCommandInvalid command incomplete or malformed (missing key, ids, journals or FBDI object)
	LoaderCommandInvalid Code = "SINEW-LOADER-002"
	// FusionRefused refused by Fusion (validation error)
	FusionRefused Code = "SINEW-FUSION-001"
	// FusionOnhandControlExists refused by Fusion: EGP_CONTROL_ONHAND_EXISTS, the item's lot/serial control cannot change while on-hand exists
	FusionOnhandControlExists Code = "SINEW-FUSION-002"
	// FusionBatchAlreadySubmitted batch already submitted to Fusion from another file
	FusionBatchAlreadySubmitted Code = "SINEW-FUSION-003"
	// FusionBatchFailed journal batch failed in Fusion's import
	FusionBatchFailed Code = "SINEW-FUSION-004"
	// ReconInputInvalid reconciliation input incomplete or unreadable
	ReconInputInvalid Code = "SINEW-RECON-001"
	// ReconVariance reconciliation variance beyond the flow's tolerance
	ReconVariance Code = "SINEW-RECON-002"
	// ReconAmbiguousMatch ambiguous match: more than one target record could be the source's
	ReconAmbiguousMatch Code = "SINEW-RECON-003"
	// EpicRejected Epic answered AE or AR to a message Sinew sent (the detail is the ACK's ERR text)
	EpicRejected Code = "SINEW-EPIC-001"
	// EpicNoAck Epic did not acknowledge a message Sinew sent (timeout or connection refused)
	EpicNoAck Code = "SINEW-EPIC-002"
	// WorkerMatchAmbiguous a two-way worker flow could not match a worker to exactly one Epic provider (duplicate NPI, Epic ids that disagree, a provider linked to another worker)
	WorkerMatchAmbiguous Code = "SINEW-WORKER-001"
	// WorkerNoProviderID an Epic provider record (FHIR Practitioner or PractitionerRole) names no provider a two-way worker flow can match: no Epic SER id and no NPI, an NPI failing its check digit, or a role without its Practitioner
	WorkerNoProviderID Code = "SINEW-WORKER-002"
	// PaymentUnmatched an AP payment pays no invoice carrying a patient refund reference: not sent to Resolute
	PaymentUnmatched Code = "SINEW-AP-001"
	// PaymentAmbiguous an AP payment pays invoices of more than one patient refund: not sent to Resolute
	PaymentAmbiguous Code = "SINEW-AP-002"
	// FHIRResourceUnreadable FHIR resource unreadable: not JSON, no or an unknown resourceType, or no id
	FHIRResourceUnreadable Code = "SINEW-FHIR-001"
)

var catalogue = [...]Entry{
	{Code: HL7SegmentSequence, Constant: "HL7SegmentSequence", Text: "segment sequence error: a segment is missing, misplaced or repeated", Action: "Ask the sending system's team to fix the message's structure; replay the corrected message or discard.", Permanent: true},
	{Code: HL7RequiredFieldMissing, Constant: "HL7RequiredFieldMissing", Text: "required field missing", Action: "The dead letter names the field path: have the sender fill it, or fix the flow's mapping if the field is optional; then replay.", Permanent: true},
	{Code: HL7DataType, Constant: "HL7DataType", Text: "data type error: a field does not have its type's form (a date, a number, a coded value)", Action: "The dead letter names the field path and the expected form: have the sender correct it, then replay.", Permanent: true},
	{Code: HL7TableValueNotFound, Constant: "HL7TableValueNotFound", Text: "table value not found: a code is missing from a crosswalk or an HL7 table", Action: "Add the code to the crosswalk named in the detail (sinew crosswalk), then replay: a newer crosswalk version maps it.", Permanent: true},
	{Code: HL7ValueTooLong, Constant: "HL7ValueTooLong", Text: "value too long", Action: "The dead letter names the field path and the length: have the sender shorten it or raise the limit in the flow, then replay.", Permanent: true},
	{Code: HL7UnsupportedMessageType, Constant: "HL7UnsupportedMessageType", Text: "unsupported message type", Action: "Route the message type to a flow in flows.yaml or stop the sender sending it; discard the dead letter if it is not wanted.", Permanent: true},
	{Code: HL7UnsupportedEvent, Constant: "HL7UnsupportedEvent", Text: "unsupported event code", Action: "Route the trigger event to a flow in flows.yaml or stop the sender sending it; discard if not wanted.", Permanent: true},
	{Code: HL7UnsupportedProcessingID, Constant: "HL7UnsupportedProcessingID", Text: "unsupported processing id", Action: "Check MSH-11 of the sender (production P vs test T) against the listener's configuration.", Permanent: true},
	{Code: HL7UnsupportedVersion, Constant: "HL7UnsupportedVersion", Text: "unsupported version id", Action: "Check MSH-12 against the versions the flow accepts; ask the sender or widen the flow's versions.", Permanent: true},
	{Code: HL7UnknownKey, Constant: "HL7UnknownKey", Text: "unknown key identifier", Action: "The key the message refers to is unknown: create it in the target first, then replay.", Permanent: true},
	{Code: HL7DuplicateKey, Constant: "HL7DuplicateKey", Text: "duplicate key identifier", Action: "The key already exists: check for a duplicate send, then discard, or replay after fixing the target.", Permanent: true},
	{Code: HL7RecordLocked, Constant: "HL7RecordLocked", Text: "application record locked", Action: "The target record was locked: replay once the lock is released.", Permanent: true},
	{Code: HL7ApplicationError, Constant: "HL7ApplicationError", Text: "application internal error: the message could not be read or processed", Action: "Read the detail and the service log at the dead letter's time; fix the cause and replay.", Permanent: true},
	{Code: IngestRejected, Constant: "IngestRejected", Text: "rejected at ingest (a record from before reason codes)", Action: "Read the detail (it names the HL7 error); have the sender fix the message, then replay or discard.", Permanent: true},
	{Code: BusUndecodable, Constant: "BusUndecodable", Text: "payload could not be decoded as the consumer's message type", Action: "A producer published the wrong type on the subject or a version skew exists between services: upgrade, then replay.", Permanent: true},
	{Code: BusHandlerPanic, Constant: "BusHandlerPanic", Text: "the handler panicked on this delivery", Action: "A bug: report it with the dead letter's stream and sequence (no payload); replay after the fix.", Permanent: true},
	{Code: BusRetriesExhausted, Constant: "BusRetriesExhausted", Text: "retries exhausted: the handler failed on every delivery", Action: "The detail has the last error: fix the downstream (Fusion, object store, network), then replay.", Permanent: false},
	{Code: BusPermanent, Constant: "BusPermanent", Text: "permanent failure without a more specific code", Action: "Read the detail; replay after fixing the cause, or discard.", Permanent: true},
	{Code: BusNoRoute, Constant: "BusNoRoute", Text: "no route for the delivery's subject in the service's route table", Action: "The topology delivered a subject the service does not handle (a consumer filter or a new flow without its handler): fix the topology or the flow's declaration, then replay.", Permanent: true},
	{Code: DLQMaxDeliveries, Constant: "DLQMaxDeliveries", Text: "max deliveries reached without acknowledgement", Action: "The consumer crashed or stalled on this message: check the service log and restarts at that time, then replay.", Permanent: false},
	{Code: DLQTerminated, Constant: "DLQTerminated", Text: "terminated by a consumer without a dead-letter record of its own", Action: "Read the detail (the consumer's termination reason); replay after fixing the cause.", Permanent: true},
	{Code: TransformNoMapper, Constant: "TransformNoMapper", Text: "no mapper for the message's flow", Action: "Declare the flow in flows.yaml and deploy its mapper, then replay.", Permanent: true},
	{Code: TransformBatchInvalid, Constant: "TransformBatchInvalid", Text: "batch manifest invalid or its file missing from the object store", Action: "Re-drop the file in the flow's folder; discard the dead letter.", Permanent: true},
	{Code: TransformBatchChanged, Constant: "TransformBatchChanged", Text: "batch already mapped from other bytes: not posted twice", Action: "Decide which file is right: discard this dead letter, or cancel the first batch in Fusion and re-drop with a new batch id.", Permanent: true},
	{Code: TransformBatchRejected, Constant: "TransformBatchRejected", Text: "batch rejected by validation with findings", Action: "Open the findings report named in the detail, fix the source file and re-drop it.", Permanent: true},
	{Code: TransformBodyMissing, Constant: "TransformBodyMissing", Text: "a large HL7 message's body is missing from the object store hl7_bodies", Action: "The body was removed or never stored: have the sender resend the message; discard the dead letter.", Permanent: true},
	{Code: LoaderNoRoute, Constant: "LoaderNoRoute", Text: "no loader for the command's subject", Action: "A producer published a command the loader does not know: upgrade the loader, then replay.", Permanent: true},
	{Code: LoaderCommandInvalid, Constant: "LoaderCommandInvalid", Text: "command incomplete or malformed (missing key, ids, journals or FBDI object)", Action: "A bug upstream of the loader: report it; replay after the fix or discard.", Permanent: true},
	{Code: FusionRefused, Constant: "FusionRefused", Text: "refused by Fusion (validation error)", Action: "The detail has Fusion's code: fix the data or the Fusion setup (item, organization, UOM, subinventory), then replay.", Permanent: true},
	{Code: FusionOnhandControlExists, Constant: "FusionOnhandControlExists", Text: "refused by Fusion: EGP_CONTROL_ONHAND_EXISTS, the item's lot/serial control cannot change while on-hand exists", Action: "Move or issue the on-hand quantity in Fusion first (or keep the control as it is in Epic's item), then replay.", Permanent: true},
	{Code: FusionBatchAlreadySubmitted, Constant: "FusionBatchAlreadySubmitted", Text: "batch already submitted to Fusion from another file", Action: "Check the batch in Fusion; discard the dead letter if the first submission is right.", Permanent: true},
	{Code: FusionBatchFailed, Constant: "FusionBatchFailed", Text: "journal batch failed in Fusion's import", Action: "Read the execution report named in the detail; fix in Fusion or the source, then re-drop the file.", Permanent: true},
	{Code: ReconInputInvalid, Constant: "ReconInputInvalid", Text: "reconciliation input incomplete or unreadable", Action: "Check that the batch's FBDI object and load result exist (sinew recon report); replay after fixing.", Permanent: true},
	{Code: ReconVariance, Constant: "ReconVariance", Text: "reconciliation variance beyond the flow's tolerance", Action: "Open the triage item (sinew triage show ID): drill from the batch to the journal and line, fix the source or the crosswalk, then resolve it with a note.", Permanent: true},
	{Code: ReconAmbiguousMatch, Constant: "ReconAmbiguousMatch", Text: "ambiguous match: more than one target record could be the source's", Action: "Decide which Fusion record is the source's (sinew triage show ID lists the candidates) and resolve the item with a note naming it.", Permanent: true},
	{Code: EpicRejected, Constant: "EpicRejected", Text: "Epic answered AE or AR to a message Sinew sent (the detail is the ACK's ERR text)", Action: "Read the ERR text in the detail (a locked record, an unknown provider, a field Epic refused); fix it in Epic or Fusion, then replay.", Permanent: false},
	{Code: EpicNoAck, Constant: "EpicNoAck", Text: "Epic did not acknowledge a message Sinew sent (timeout or connection refused)", Action: "Check Epic's inbound interface (running, listening, its queue); replay once it answers: the record is keyed, a resend is not doubled.", Permanent: false},
	{Code: WorkerMatchAmbiguous, Constant: "WorkerMatchAmbiguous", Text: "a two-way worker flow could not match a worker to exactly one Epic provider (duplicate NPI, Epic ids that disagree, a provider linked to another worker)", Action: "Link the worker by hand (Fusion person number to Epic SER) or fix the duplicate in Epic, then replay; Sinew never guesses a match.", Permanent: true},
	{Code: WorkerNoProviderID, Constant: "WorkerNoProviderID", Text: "an Epic provider record (FHIR Practitioner or PractitionerRole) names no provider a two-way worker flow can match: no Epic SER id and no NPI, an NPI failing its check digit, or a role without its Practitioner", Action: "Have Epic's team fix the provider record (the detail names the element), then let the next sync re-read it, or discard.", Permanent: true},
	{Code: PaymentUnmatched, Constant: "PaymentUnmatched", Text: "an AP payment pays no invoice carrying a patient refund reference: not sent to Resolute", Action: "Triage: find the refund the payment settles (the payment number is in the detail), correct the invoice's number in Fusion, then replay; discard if it is no refund.", Permanent: true},
	{Code: PaymentAmbiguous, Constant: "PaymentAmbiguous", Text: "an AP payment pays invoices of more than one patient refund: not sent to Resolute", Action: "Triage: split the payment in Fusion (one refund per payment) or post the statuses in Resolute by hand, then discard.", Permanent: true},
	{Code: FHIRResourceUnreadable, Constant: "FHIRResourceUnreadable", Text: "FHIR resource unreadable: not JSON, no or an unknown resourceType, or no id", Action: "The dead letter keeps the resource's bytes and names the problem (path and code): have Epic's team fix the resource or its export, then re-read it (the next sync) or discard.", Permanent: true},
}
