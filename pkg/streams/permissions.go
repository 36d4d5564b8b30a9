package streams

import (
	"fmt"
	"sort"
	"strings"
)

// NATS users: one per service, the simulators (outside systems that hold a
// connection only), and the admin that provisions the topology and runs the
// operator's CLI. The same table makes `sinew up`'s embedded server users
// and deploy/compose/nats/accounts.conf (docs/architecture.md, Guarantees 6).
const (
	UserAdmin      = "admin"
	UserIngest     = "ingest"
	UserTransform  = "transform"
	UserLoader     = "loader"
	UserReconciler = "reconciler"
	UserDeadletter = "deadletter"
	UserConsole    = "console"
	UserEpicsim    = "epicsim"
	UserFusionsim  = "fusionsim"
)

// HopIngest is the audit hop of ingest (its records are not per consumer).
const HopIngest = "ingest"

// HopTriage is the audit hop of triage changes (pkg/triage).
const HopTriage = "triage"

// HopConsole is the audit hop of the web console's views and actions.
const HopConsole = "console"

// HopReplay is the audit hop of dead-letter replays and discards (pkg/dlq).
const HopReplay = "replay"

// HopFlows is the audit hop of flow state changes (pkg/flowstate).
const HopFlows = "flows"

// ReplaySubjects are the subjects a dead letter is replayed to: the input
// of every consumer whose failures reach the DLQ.
var ReplaySubjects = []string{"hl7.in.>", "fhir.in.>", "batch.in.>", "fusion.cmd.>", "epic.cmd.>", "result.>"}

// HopRetention is the audit hop of retention notices (audit.RecordExpiry).
const HopRetention = "retention"

// HopSchedule is the audit hop of scheduled flows' runs (pkg/schedule).
const HopSchedule = "schedule"

// Grant is what one NATS user may do, in the topology's terms.
type Grant struct {
	User string
	// Admin may do anything, stream and consumer changes included.
	Admin bool
	// Publish lists the data subjects the user may publish (wildcards allowed).
	Publish []string
	// Consume names the durable consumers the user pulls from and acks.
	Consume []string
	// ConsumeAny names streams any of whose durable consumers it pulls
	// from and acks: transform's per-flow HL7 and batch consumers, whose names come
	// from flows.yaml (so deploy/compose's accounts.conf covers every flow).
	ConsumeAny []string
	// AuditHops are the hops whose audit subjects (audit.*.<hop>) it writes.
	AuditHops []string
	// Read names streams it reads by sequence, subject or ordered consumer.
	Read []string
	// Pause names streams whose durable consumers it pauses and resumes
	// (flow state: flowstate.Store.Set).
	Pause []string
	// KV and Objects are buckets it reads and writes; KVRead only reads.
	KV      []string
	KVRead  []string
	Objects []string
	// Serve lists the request subjects it answers (it subscribes to them
	// and may reply once to each request, NATS allow_responses).
	Serve []string
}

// Permissions is a user's NATS permissions: subject allow and deny lists.
type Permissions struct {
	PublishAllow, PublishDeny, SubscribeAllow []string
	// Responses: it may publish one reply to each request it received
	// (allow_responses), whatever the requester's inbox.
	Responses bool
}

// Grants is the permission table for t: which service publishes which
// subjects, pulls which consumers and uses which buckets. Only transform
// publishes commands, only a writer its own audit subjects, and nobody but
// the admin creates, changes, purges or deletes streams or messages.
func (t Topology) Grants() []Grant {
	hops := func(names ...string) []string {
		var out []string
		for _, n := range names {
			if c, ok := t.Consumer(n); ok && c.Hop != "" && !contains(out, c.Hop) {
				out = append(out, c.Hop)
			}
		}
		return out
	}
	var allStreams []string
	for _, s := range t.Streams {
		allStreams = append(allStreams, s.Name)
	}
	transformConsumers := []string{TransformHL7, TransformFHIR}
	if _, ok := t.Consumer(TransformBatch); ok { // left out with per-flow batch consumers
		transformConsumers = append(transformConsumers, TransformBatch)
	}
	for _, f := range t.hl7Flows {
		transformConsumers = append(transformConsumers, TransformHL7Flow(f))
	}
	for _, f := range t.batchFlows {
		transformConsumers = append(transformConsumers, TransformBatchFlow(f))
	}
	for _, f := range t.fhirFlows {
		transformConsumers = append(transformConsumers, TransformFHIRFlow(f.ID))
	}
	var loaderConsumers []string
	if _, ok := t.Consumer(LoaderFusion); ok { // left out with per-flow loader consumers
		loaderConsumers = append(loaderConsumers, LoaderFusion)
	}
	for _, f := range t.loadFlows {
		loaderConsumers = append(loaderConsumers, LoaderFusionFlow(f))
	}
	loaderConsumers = append(loaderConsumers, LoaderEpic)
	idem := make([]string, IdempotencyShards)
	for i := range idem {
		idem[i] = IdempotencyBucket(i)
	}
	return []Grant{
		{User: UserAdmin, Admin: true},
		{
			User:      UserIngest,
			Publish:   []string{"hl7.in.>", "fhir.in.>", "batch.in.>"},
			AuditHops: []string{HopIngest},
			Read:      []string{HL7In, FHIRIn, BatchIn},
			KV:        []string{KVSequences, KVBatchSeen, KVWatermarks},
			Objects:   []string{ObjBatchFiles, ObjHL7Bodies},
		},
		{
			User:       UserTransform,
			Publish:    []string{"fusion.cmd.>", "epic.cmd.>"},
			Consume:    transformConsumers,
			ConsumeAny: []string{HL7In, BatchIn, FHIRIn},
			AuditHops:  append(hops(transformConsumers...), HopSchedule),
			// transform stores the crosswalks its configuration names and
			// records the batch files it rejects
			KV:     []string{KVBatchSeen, KVCrosswalk, KVBatchState, KVFusionPoll, KVFlowRuns},
			KVRead: []string{KVFlowState},
			// nightly-catchup compares the day's commands and results with
			// Fusion and re-sends what Fusion lacks (pkg/schedule runs it)
			Read:    []string{FusionCmd, Results},
			Objects: []string{ObjBatchFiles, ObjFBDI, ObjHL7Bodies},
		},
		{
			User:    UserLoader,
			Publish: []string{"result.>"},
			Consume: loaderConsumers,
			// every flow's own loader consumer, whatever flows.yaml the
			// deployment's provisioning ensured (loader-fusion-<flow>)
			ConsumeAny: []string{FusionCmd},
			AuditHops:  hops(loaderConsumers...),
			Read:       []string{FusionCmd, Results},
			KV:         append(idem, KVBatchState),
			KVRead:     []string{KVFlowState},
			Objects:    []string{ObjFBDI, ObjJobLogs},
		},
		{
			User:      UserReconciler,
			Publish:   []string{"recon.>"},
			Consume:   []string{ReconResults},
			AuditHops: hops(ReconResults),
			Read:      []string{BatchIn, FusionCmd, Results, Recon, FHIRIn},
			KV:        []string{KVBatchState},
			KVRead:    []string{KVCrosswalk, KVFlowState, KVWatermarks, KVFlowRuns}, // the FHIR checks cut at the sync watermark
			Objects:   []string{ObjFBDI, ObjBatchFiles},
		},
		{
			// deadletter fetches the original of any dead message.
			User:      UserDeadletter,
			Publish:   []string{"dlq.>"},
			Consume:   []string{Deadletter},
			AuditHops: hops(Deadletter),
			Read:      allStreams,
		},
		{User: UserConsole, Read: allStreams, KVRead: []string{KVBatchState, KVCrosswalk, KVFlowRuns},
			// the console builds its tracking index from AUDIT (an ordered
			// consumer, no durable) and answers lookups from it; it keeps the triage
			// queue; its operators replay and discard dead letters (a
			// replay republishes the stored message on its original
			// subject, as `sinew dlq replay` does) and stage, activate
			// and pause flows, every action audited
			Publish: ReplaySubjects, Serve: []string{TrackLookup, TrackStatus},
			KV: []string{KVTriage, KVReplays, KVFlowState}, Pause: []string{HL7In, FHIRIn, BatchIn, FusionCmd},
			AuditHops: []string{HopTriage, HopRetention, HopConsole, HopReplay, HopFlows}},
		// The simulators stand for Epic and Fusion: outside systems that
		// reach Sinew over MLLP, SFTP and HTTP, never through NATS.
		{User: UserEpicsim},
		{User: UserFusionsim},
	}
}

// Grant returns the named user's grant.
func (t Topology) Grant(user string) (Grant, bool) {
	for _, g := range t.Grants() {
		if g.User == user {
			return g, true
		}
	}
	return Grant{}, false
}

// Permissions turns a grant into NATS subject permissions. An admin's are
// empty: no restriction.
func (t Topology) Permissions(g Grant) (Permissions, error) {
	var p Permissions
	if g.Admin {
		return p, nil
	}
	add := func(s ...string) { p.PublishAllow = append(p.PublishAllow, s...) }
	add("$JS.API.INFO")
	add(g.Publish...)
	for _, h := range g.AuditHops {
		add("audit.*." + Token(h))
	}
	readStream := func(s string) {
		add("$JS.API.STREAM.INFO."+s, "$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.DIRECT.GET."+s, "$JS.API.DIRECT.GET."+s+".>",
			// ordered consumers (scans): ephemeral, cleaned up by the server
			"$JS.API.CONSUMER.CREATE."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.INFO."+s+".*", "$JS.API.CONSUMER.MSG.NEXT."+s+".*",
			"$JS.API.CONSUMER.DELETE."+s+".*", "$JS.FC."+s+".>")
	}
	for _, s := range g.Read {
		if _, ok := t.Stream(s); !ok {
			return p, fmt.Errorf("streams: grant %s reads unknown stream %s", g.User, s)
		}
		readStream(s)
	}
	for _, name := range g.Consume {
		c, ok := t.Consumer(name)
		if !ok {
			return p, fmt.Errorf("streams: grant %s consumes unknown consumer %s", g.User, name)
		}
		add("$JS.API.STREAM.INFO."+c.Stream,
			"$JS.API.CONSUMER.INFO."+c.Stream+"."+c.Name,
			"$JS.API.CONSUMER.MSG.NEXT."+c.Stream+"."+c.Name,
			"$JS.ACK."+c.Stream+"."+c.Name+".>",
			// the handler loop records its own dead letters (bus.deadLetter)
			"dlq."+Token(c.Stream)+"."+Token(c.Name)+".*",
			"$JS.API.STREAM.INFO."+DLQ, "$JS.API.STREAM.MSG.GET."+DLQ, "$JS.API.DIRECT.GET."+DLQ+".>")
		// the original of a message it dead-letters
		add("$JS.API.STREAM.MSG.GET." + c.Stream)
	}
	for _, s := range g.ConsumeAny {
		if _, ok := t.Stream(s); !ok {
			return p, fmt.Errorf("streams: grant %s consumes from unknown stream %s", g.User, s)
		}
		add("$JS.API.STREAM.INFO."+s,
			"$JS.API.CONSUMER.INFO."+s+".*",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
			"$JS.ACK."+s+".*.>",
			"dlq."+Token(s)+".*.*",
			"$JS.API.STREAM.INFO."+DLQ, "$JS.API.STREAM.MSG.GET."+DLQ, "$JS.API.DIRECT.GET."+DLQ+".>",
			"$JS.API.STREAM.MSG.GET."+s)
	}
	for _, s := range g.Pause {
		if _, ok := t.Stream(s); !ok {
			return p, fmt.Errorf("streams: grant %s pauses consumers of unknown stream %s", g.User, s)
		}
		add("$JS.API.CONSUMER.PAUSE." + s + ".*")
	}
	kv := func(b string, write bool) error {
		if !t.hasKV(b) {
			return fmt.Errorf("streams: grant %s uses unknown bucket %s", g.User, b)
		}
		s := "KV_" + b
		readStream(s)
		if write {
			add("$KV." + b + ".>")
		}
		return nil
	}
	for _, b := range g.KV {
		if err := kv(b, true); err != nil {
			return p, err
		}
	}
	for _, b := range g.KVRead {
		if err := kv(b, false); err != nil {
			return p, err
		}
	}
	for _, b := range g.Objects {
		if !t.hasObject(b) {
			return p, fmt.Errorf("streams: grant %s uses unknown object store %s", g.User, b)
		}
		s := "OBJ_" + b
		readStream(s)
		// a Put over an existing name purges the old chunks
		add("$O."+b+".>", "$JS.API.STREAM.PURGE."+s)
	}
	p.PublishAllow = dedupe(p.PublishAllow)
	// Durable consumers are the admin's (Ensure): a reader may neither
	// redefine nor delete one.
	for _, c := range t.Consumers {
		base := c.Stream + "." + c.Name
		p.PublishDeny = append(p.PublishDeny, "$JS.API.CONSUMER.CREATE."+base, "$JS.API.CONSUMER.CREATE."+base+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+base, "$JS.API.CONSUMER.DELETE."+base)
	}
	// Replies (pulled messages, KV and object reads, API answers) go to
	// the user's own inbox prefix: with a shared "_INBOX.>" any user could
	// subscribe there and read what JetStream delivers to another.
	p.SubscribeAllow = append([]string{InboxPrefix(g.User) + ".>"}, g.Serve...)
	p.Responses = len(g.Serve) > 0
	return p, nil
}

// InboxPrefix is the reply-subject prefix of user's connections
// (nats.CustomInboxPrefix): each user may subscribe under its own only.
func InboxPrefix(user string) string { return "_INBOX_" + Token(user) }

func (t Topology) hasKV(b string) bool {
	for _, k := range t.KV {
		if k.Bucket == b {
			return true
		}
	}
	return false
}

func (t Topology) hasObject(b string) bool {
	for _, o := range t.Objects {
		if o.Bucket == b {
			return true
		}
	}
	return false
}

// HopUsers maps each audit hop to the users that may write it.
func (t Topology) HopUsers() map[string][]string {
	m := map[string][]string{}
	for _, g := range t.Grants() {
		for _, h := range g.AuditHops {
			m[h] = append(m[h], g.User)
		}
	}
	// The operator's sinew CLI (the admin user) writes the hops of the
	// actions it shares with the console: replays and discards, flow
	// changes, triage.
	for _, h := range []string{HopReplay, HopFlows, HopTriage} {
		m[h] = append(m[h], UserAdmin)
	}
	return m
}

// AccountsConf renders deploy/compose/nats/accounts.conf from the table:
// passwords come from $SINEW_<USER>_PASSWORD.
func (t Topology) AccountsConf() (string, error) {
	var b strings.Builder
	b.WriteString(`# GENERATED by "sinew streams accounts" from pkg/streams (permissions.go):
# do not edit; test/e2e/compose_test.go fails when this file is stale.
# Accounts and per-service users for Sinew's NATS cluster, the same as
# sinew up's embedded server. Passwords come from the environment (see
# ../.env.example). Only the admin user may create, change, purge or delete
# streams and consumers or delete messages (docs/architecture.md, Guarantees 6).

accounts {
  SINEW {
    jetstream: enabled
    users: [
`)
	for _, g := range t.Grants() {
		fmt.Fprintf(&b, "      { user: %s, password: $SINEW_%s_PASSWORD", g.User, strings.ToUpper(g.User))
		p, err := t.Permissions(g)
		if err != nil {
			return "", err
		}
		if g.Admin {
			b.WriteString(" }\n")
			continue
		}
		b.WriteString(",\n        permissions: {\n")
		list := func(indent, name string, subs []string) {
			fmt.Fprintf(&b, "%s%s: [\n", indent, name)
			for _, s := range subs {
				fmt.Fprintf(&b, "%s  %q\n", indent, s)
			}
			fmt.Fprintf(&b, "%s]\n", indent)
		}
		b.WriteString("          publish: {\n")
		list("            ", "allow", p.PublishAllow)
		if len(p.PublishDeny) > 0 {
			list("            ", "deny", p.PublishDeny)
		}
		b.WriteString("          }\n          subscribe: {\n")
		list("            ", "allow", p.SubscribeAllow)
		b.WriteString("          }\n")
		if p.Responses {
			b.WriteString("          allow_responses: true\n")
		}
		b.WriteString("        }\n      }\n")
	}
	b.WriteString(`    ]
  }
  SYS {
    users: [ { user: sys, password: $SINEW_SYS_PASSWORD } ]
  }
}
system_account: SYS
`)
	return b.String(), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out[1:]) // keep $JS.API.INFO first, the rest stable
	return out
}
