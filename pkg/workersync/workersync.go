// Package workersync holds the rules of a two-way worker ↔ provider master
// flow that need no I/O: which side owns each attribute (from the flow's
// `conflicts` in flows.yaml), how changes from both sides within a window
// resolve (deterministically, the losers recorded), how Sinew recognises
// the echo of its own write coming back (no ping-pong), and how a Fusion
// worker is matched to an Epic provider (crosswalk.go).
//
// Values are a worker's HR and clinical attributes, not patient data; even
// so, echo records keep keyed hashes of values, never the values.
package workersync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
)

// Side is one end of the flow.
type Side string

// The two sides. Fusion HCM is the flow's source, Epic its target.
const (
	Fusion Side = "fusion"
	Epic   Side = "epic"
)

// Other is the opposite side.
func (s Side) Other() Side {
	if s == Fusion {
		return Epic
	}
	return Fusion
}

// Attr is one attribute of a worker / provider.
type Attr string

// HR attributes (by default Fusion's) and clinical attributes (Epic's).
const (
	Name         Attr = "name"
	Status       Attr = "status" // A active, I inactive (terminated)
	Department   Attr = "department"
	Job          Attr = "job"
	Manager      Attr = "manager"
	NPI          Attr = "npi"
	Specialty    Attr = "specialty"
	Credentials  Attr = "credentials"
	ProviderType Attr = "provider_type"
)

// Attribute groups a conflict rule may name instead of one attribute.
var groups = map[string][]Attr{
	"hr_attributes":       {Name, Status, Department, Job, Manager},
	"clinical_attributes": {NPI, Specialty, Credentials, ProviderType},
}

// Attrs is every attribute, in a fixed order.
var Attrs = []Attr{Name, Status, Department, Job, Manager, NPI, Specialty, Credentials, ProviderType}

// Rules say which side owns each attribute: only the owner's changes are
// applied; the other side's are recorded as losses.
type Rules map[Attr]Side

// RulesOf reads a flow's conflict rules. A rule names a group
// (hr_attributes, clinical_attributes) or one attribute; an attribute's
// own rule beats its group's whatever the order. "source" is the flow's
// source side (Fusion for worker-sync), "target" its target. Every
// attribute must end up with an owner.
func RulesOf(f flows.Flow) (Rules, error) {
	side := func(w string) Side {
		if w == "source" {
			return Fusion
		}
		return Epic
	}
	r := Rules{}
	for _, pass := range []bool{true, false} { // groups first, then attributes
		for _, c := range f.Conflicts {
			g, isGroup := groups[c.Field]
			switch {
			case isGroup && pass:
				for _, a := range g {
					r[a] = side(c.Wins)
				}
			case !isGroup && !pass:
				if !slices.Contains(Attrs, Attr(c.Field)) {
					return nil, fmt.Errorf("workersync: flow %s: conflict field %q is not an attribute or group (%s)", f.ID, c.Field, fieldList())
				}
				r[Attr(c.Field)] = side(c.Wins)
			}
		}
	}
	for _, a := range Attrs {
		if _, ok := r[a]; !ok {
			return nil, fmt.Errorf("workersync: flow %s: no conflict rule covers %s", f.ID, a)
		}
	}
	return r, nil
}

func fieldList() string {
	names := []string{"hr_attributes", "clinical_attributes"}
	for _, a := range Attrs {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// Change is what one side changed on one worker: the attributes and their
// new values, when it happened there, and a sequence that orders changes
// of one side with the same time (the stream sequence).
type Change struct {
	Side   Side
	Worker string // the crosswalk key (Fusion person number)
	At     time.Time
	Seq    uint64
	Values map[Attr]string
}

// Loss is a change to an attribute that was not applied, and why.
type Loss struct {
	Attr   Attr
	Side   Side // whose change lost
	Reason string
	At     time.Time
}

// Why a change to an attribute lost.
const (
	LostOwner = "owned-by-other-side" // the rules give the attribute to the other side
	LostLater = "superseded"          // a later change of the owner in the window
)

// Resolve merges the changes made to one worker on both sides within a
// window: each attribute takes the owner's latest value (by At, then Seq);
// every other change of it is a loss. The result is the same whatever
// order the changes arrive in. The merged values are returned per side they
// must be written to (an attribute owned by Fusion is written to Epic and
// vice versa).
func Resolve(r Rules, changes []Change) (apply map[Side]map[Attr]string, losses []Loss) {
	cs := slices.Clone(changes)
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].At.Equal(cs[j].At) {
			return cs[i].At.Before(cs[j].At)
		}
		if cs[i].Seq != cs[j].Seq {
			return cs[i].Seq < cs[j].Seq
		}
		return cs[i].Side < cs[j].Side
	})
	type won struct {
		v  string
		at time.Time
		ok bool
	}
	best := map[Attr]won{}
	for _, c := range cs {
		for _, a := range sortedAttrs(c.Values) {
			if r[a] != c.Side {
				losses = append(losses, Loss{Attr: a, Side: c.Side, Reason: LostOwner, At: c.At})
				continue
			}
			if prev := best[a]; prev.ok {
				losses = append(losses, Loss{Attr: a, Side: c.Side, Reason: LostLater, At: prev.at})
			}
			best[a] = won{v: c.Values[a], at: c.At, ok: true}
		}
	}
	apply = map[Side]map[Attr]string{}
	for a, w := range best {
		to := r[a].Other()
		if apply[to] == nil {
			apply[to] = map[Attr]string{}
		}
		apply[to][a] = w.v
	}
	return apply, losses
}

func sortedAttrs(m map[Attr]string) []Attr {
	out := make([]Attr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Written is what Sinew last wrote to one side for one worker: per
// attribute a keyed hash of the value (Hasher.Sum), so an echo can be
// recognised without keeping the value.
type Written map[Attr]string

// Hasher hashes attribute values under a site key.
type Hasher struct{ Key []byte }

// Sum is the keyed hash of a's value v.
func (h Hasher) Sum(a Attr, v string) string {
	m := hmac.New(sha256.New, h.Key)
	m.Write([]byte(a))
	m.Write([]byte{0})
	m.Write([]byte(strings.TrimSpace(v)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Record returns w updated with the values Sinew is writing.
func (h Hasher) Record(w Written, values map[Attr]string) Written {
	out := Written{}
	for a, v := range w {
		out[a] = v
	}
	for a, v := range values {
		out[a] = h.Sum(a, v)
	}
	return out
}

// Unechoed drops from a change the attributes whose value is the one Sinew
// last wrote to the change's side: that side is only reporting Sinew's own
// write back. What remains is a real change (empty: the whole change was
// an echo).
func (h Hasher) Unechoed(w Written, c Change) Change {
	out := c
	out.Values = map[Attr]string{}
	for a, v := range c.Values {
		if w[a] != "" && w[a] == h.Sum(a, v) {
			continue
		}
		out.Values[a] = v
	}
	return out
}

// Diff returns the attributes of want that current lacks or holds with
// another value: what a refresh must write.
func Diff(current, want map[Attr]string) map[Attr]string {
	out := map[Attr]string{}
	for a, v := range want {
		if strings.TrimSpace(current[a]) != strings.TrimSpace(v) {
			out[a] = v
		}
	}
	return out
}
