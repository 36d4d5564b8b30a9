package loader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/refund"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/supplierfile"
	ws "github.com/sinewhq/sinew/pkg/workersync"
)

// EpicConfig is Epic's inbound MLLP interface, where EPIC_CMD commands
// are sent (the provider master, MFN^M02).
type EpicConfig struct {
	// Addr is Epic's inbound interface (host:port); empty leaves EPIC_CMD
	// unconsumed: its commands wait.
	Addr string `yaml:"addr"`
	// AckTimeout bounds the wait for Epic's ACK; a timeout is retried by
	// redelivery like an AE.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// Facility is MSH-4 and MSH-6 of what Sinew sends; ReceivingApp MSH-5.
	Facility     string `yaml:"facility"`
	ReceivingApp string `yaml:"receiving_app"`
	// SupplierApp is MSH-5 of the supplier reference records.
	SupplierApp string `yaml:"supplier_app"`
	// ResoluteApp is MSH-5 of refund payment statuses (the refund
	// reference prefix is the flow's, flows.yaml refunds.prefix).
	ResoluteApp string `yaml:"resolute_app"`
	// Workers send concurrently (each on its own connection; one message
	// at a time per connection, as MLLP orders them).
	Workers int `yaml:"workers"`
	// SFTP is Epic's file share, for flows whose flows.yaml delivery is
	// sftp (supplier-sync at a site that takes its supplier reference
	// file); its result files are awaited for AckTimeout.
	SFTP EpicSFTPConfig `yaml:"sftp"`
}

// epicSender sends one message at a time per connection to Epic.
type epicSender struct {
	cfg  EpicConfig
	mu   sync.Mutex
	idle []*mllp.Client
}

func (e *epicSender) send(ctx context.Context, msg []byte) ([]byte, error) {
	e.mu.Lock()
	var c *mllp.Client
	if n := len(e.idle); n > 0 {
		c, e.idle = e.idle[n-1], e.idle[:n-1]
	}
	e.mu.Unlock()
	if c == nil {
		var err error
		// One attempt per delivery: a resend is the stream's redelivery,
		// counted and dead-lettered after MaxDeliver.
		c, err = mllp.Dial(ctx, mllp.ClientConfig{Addr: e.cfg.Addr, Match: hl7.AckMatches, AckTimeout: e.cfg.AckTimeout, Retries: -1, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, err
		}
	}
	reply, err := c.Send(ctx, msg)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	e.mu.Lock()
	e.idle = append(e.idle, c)
	e.mu.Unlock()
	return reply, nil
}

func (e *epicSender) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.idle {
		_ = c.Close()
	}
	e.idle = nil
}

// routeEpic hands an EPIC_CMD command to its sender by the subject's
// operation.
func (s *Service) routeEpic(ctx context.Context, d *bus.Delivery) error {
	switch d.Subject[strings.LastIndexByte(d.Subject, '.')+1:] {
	case "provider":
		return bus.Proto(s.sendProvider)(ctx, d)
	case "supplier":
		return bus.Proto(s.sendSupplier)(ctx, d)
	case "payment":
		return bus.Proto(s.sendPayment)(ctx, d)
	}
	return bus.Permanent(reason.Wrap(reason.LoaderNoRoute, fmt.Errorf("no loader for subject %s", d.Subject)))
}

// sendProvider sends a worker change to Epic's provider master as one
// MFN^M02 record and checks the ACK (MSA-2 matched by the client, MSA-1
// AA). AE, AR and no answer are retried by redelivery and finally
// dead-lettered with Epic's ERR text. The record is keyed (SER or person
// number) and Epic adds or updates by it, so a resend after a lost ACK is
// not doubled; its control id is the command's, the same on every resend.
func (s *Service) sendProvider(ctx context.Context, d *bus.Delivery, ev *sinewv1.WorkerChange) error {
	env := ev.GetEnvelope()
	ctrl := controlID(env.GetEventId())
	m, err := ws.ProviderMessage(ev.GetAction(), ev.GetPersonNumber(), ev.GetEpicProviderId(), ev.GetAttributes(), ev.GetAttributes(),
		ev.GetEffectiveAt().AsTime(), mfn.Header{SendingApp: "SINEW", SendingFacility: s.cfg.Epic.Facility, ReceivingApp: s.cfg.Epic.ReceivingApp,
			ReceivingFacility: s.cfg.Epic.Facility, ControlID: ctrl, Time: time.Now()})
	if err != nil {
		return bus.Permanent(err)
	}
	if err := s.sendToEpic(ctx, m); err != nil {
		return err
	}
	return s.result(ctx, env.GetFlow(), "accepted", "epic:"+ctrl, &sinewv1.LoadResult{Envelope: env, Outcome: "accepted", TargetSystem: "epic",
		TargetIds: map[string]string{"control_id": ctrl}, CompletedAt: timestamppb.Now(), Attempts: int32(d.NumDelivered)})
}

// sendSupplier sends a Fusion supplier to Epic's supplier reference
// (Willow, Beaker) as one MFN^M01 record and checks the ACK, as
// sendProvider does; or, where the flow's delivery is sftp, as the site's
// supplier reference file, checking Epic's result file the same way. Epic
// adds or updates by supplier number: a resend is not doubled.
func (s *Service) sendSupplier(ctx context.Context, d *bus.Delivery, ev *sinewv1.SupplierChange) error {
	env := ev.GetEnvelope()
	ctrl := controlID(env.GetEventId())
	sup := mfn.Supplier{Number: ev.GetSupplierNumber(), Name: ev.GetName(), Active: ev.GetStatus() == "ACTIVE"}
	for _, st := range ev.GetSites() {
		sup.Sites = append(sup.Sites, mfn.SupplierSite{Site: st.GetSiteCode(), ProcurementBU: st.GetProcurementBu(), Address: st.GetAddressLine(),
			City: st.GetCity(), PostalCode: st.GetPostalCode(), Country: st.GetCountry()})
	}
	via := "mllp"
	if f, ok := s.inv.Get(env.GetFlow()); ok && f.Transport() == flows.TransportSFTP {
		// The site's supplier reference file, one per change, named by
		// the control id: a resend replaces the same file.
		via = "sftp"
		delim := byte(0)
		if f.Delivery.Delimiter != "" {
			delim = f.Delivery.Delimiter[0]
		}
		data, err := supplierfile.Build(supplierfile.Header{ControlID: ctrl, Created: time.Now(), Sender: "SINEW", Facility: s.cfg.Epic.Facility}, delim, sup)
		if err != nil {
			return bus.Permanent(err)
		}
		if err := s.files.deliver(ctx, f.Delivery, supplierfile.Name(ctrl), data); err != nil {
			return err
		}
	} else {
		raw, err := mfn.BuildSupplier(mfn.Header{SendingApp: "SINEW", SendingFacility: s.cfg.Epic.Facility, ReceivingApp: s.cfg.Epic.SupplierApp,
			ReceivingFacility: s.cfg.Epic.Facility, ControlID: ctrl, Time: time.Now()}, time.Now(), sup)
		if err != nil {
			return bus.Permanent(err)
		}
		if err := s.sendRaw(ctx, raw); err != nil {
			return err
		}
	}
	d.AuditDetail = "supplier " + sup.Number + " in Epic's supplier reference (" + via + ")"
	return s.result(ctx, env.GetFlow(), "accepted", "epic:"+ctrl, &sinewv1.LoadResult{Envelope: env, Outcome: "accepted", TargetSystem: "epic",
		TargetIds: map[string]string{"control_id": ctrl, "supplier_number": sup.Number}, CompletedAt: timestamppb.Now(), Attempts: int32(d.NumDelivered)})
}

// sendPayment sends an AP payment status to Resolute, matched to its
// patient refund (pkg/refund): exactly one of the invoices it pays
// (comma-separated in invoice_number) carries a refund reference. An
// unmatched or ambiguous payment is not sent: it is dead-lettered for
// triage. Each status is one message, so Resolute keeps the history.
func (s *Service) sendPayment(ctx context.Context, d *bus.Delivery, ev *sinewv1.PaymentStatus) error {
	env := ev.GetEnvelope()
	prefix := flows.DefaultRefundPrefix
	if f, ok := s.inv.Get(env.GetFlow()); ok {
		prefix = f.RefundPrefix()
	}
	ref, err := refund.Match(strings.Split(ev.GetInvoiceNumber(), ","), prefix)
	switch {
	case errors.Is(err, refund.ErrUnmatched):
		return bus.Permanent(reason.Wrap(reason.PaymentUnmatched, fmt.Errorf("payment %s: %w", ev.GetPaymentNumber(), err)))
	case errors.Is(err, refund.ErrAmbiguous):
		return bus.Permanent(reason.Wrap(reason.PaymentAmbiguous, fmt.Errorf("payment %s: %w", ev.GetPaymentNumber(), err)))
	}
	status, err := refund.Status(ev.GetStatus())
	if err != nil {
		return bus.Permanent(err)
	}
	ctrl := controlID(env.GetEventId())
	raw := refund.Build(refund.Header{SendingApp: "SINEW", ReceivingApp: s.cfg.Epic.ResoluteApp, Facility: s.cfg.Epic.Facility, ControlID: ctrl, Time: time.Now()},
		refund.Payment{Reference: ref, PaymentNumber: ev.GetPaymentNumber(), Status: status, Amount: money.Amount(ev.GetAmount().GetMinorUnits()),
			Currency: ev.GetAmount().GetCurrency(), At: ev.GetPaidAt().AsTime()})
	if err := s.sendRaw(ctx, raw); err != nil {
		return err
	}
	d.AuditDetail = "payment " + ev.GetPaymentNumber() + " " + status + " for refund " + ref
	return s.result(ctx, env.GetFlow(), "accepted", "epic:"+ctrl, &sinewv1.LoadResult{Envelope: env, Outcome: "accepted", TargetSystem: "epic.resolute",
		TargetIds: map[string]string{"control_id": ctrl, "refund": ref, "status": status}, CompletedAt: timestamppb.Now(), Attempts: int32(d.NumDelivered)})
}

// sendToEpic sends one record and checks its ACK: nil for AA (or CA).
func (s *Service) sendToEpic(ctx context.Context, m mfn.Message) error {
	raw, err := mfn.Build(m)
	if err != nil {
		return bus.Permanent(err)
	}
	return s.sendRaw(ctx, raw)
}

// sendRaw sends one HL7 message to Epic and checks its ACK.
func (s *Service) sendRaw(ctx context.Context, raw []byte) error {
	reply, err := s.epic.send(ctx, raw)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return reason.Wrap(reason.EpicNoAck, fmt.Errorf("epic: %w", err))
	}
	ack, err := hl7.Parse(reply)
	if err != nil {
		return reason.Wrap(reason.EpicNoAck, fmt.Errorf("epic: unreadable ACK: %w", err))
	}
	code := ack.Get("MSA-1")
	if code == hl7.AA || code == hl7.CA {
		return nil
	}
	text := ack.Get("ERR-8")
	if text == "" {
		text = ack.Get("MSA-3")
	}
	where := ack.Get("ERR-2-1")
	if f := ack.Get("ERR-2-3"); f != "" {
		where += "-" + f
	}
	return reason.Wrap(reason.EpicRejected, fmt.Errorf("epic answered %s at %s: %s", code, where, clip(text, 300)))
}

// controlID is MSH-10 for an event: at most 20 characters, the same on
// every resend of the event.
func controlID(eventID string) string {
	id := "SNW" + strings.ReplaceAll(eventID, "-", "")
	return id[:min(len(id), 20)]
}

// epicLoop consumes EPIC_CMD (loader-epic).
func (s *Service) epicLoop() bus.Loop {
	return func(ctx context.Context, ready func()) error {
		c, ok := streams.New(s.cfg.Topology).Consumer(streams.LoaderEpic)
		if !ok {
			return errors.New("loader: no epic consumer in the topology")
		}
		defer s.epic.close()
		defer s.files.close()
		return s.bus.Consume(ctx, c, s.routeEpic, bus.ConsumeOptions{
			Workers: max(1, s.cfg.Epic.Workers), Buffer: max(1, s.cfg.Epic.Workers),
			MaxHandlerTime: s.cfg.Epic.AckTimeout + 30*time.Second, Ready: ready,
		})
	}
}
