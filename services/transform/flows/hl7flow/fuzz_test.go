package hl7flow_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
)

// minLeak is the shortest field value the fuzz target looks for in error
// texts; shorter ones (Y, N, EA, 1) are everywhere in the fixed text.
const minLeak = 4

// FuzzMap: every real-time HL7 flow's mapper, with the demo crosswalks,
// on any message that parses: Map never panics, and an error never shows a
// value of the message's non-MSH segments (issue 9 items 7 and 16). The
// seeds (testdata/fuzz/FuzzMap) are the flows' synthetic golden inputs and
// the three messages of the item 7 probe.
func FuzzMap(f *testing.F) {
	var mappers []*hl7flow.Mapper
	for _, id := range []string{"willow-inventory", "optime-materials", "beaker-inventory"} {
		mappers = append(mappers, flowtest.Mapper(f, id))
	}
	tabs := flowtest.Tables(f)
	f.Add(rds(phiName, "0781-3207-95", "2"))
	f.Add(rds("Y", "0781-3207-95", "1970-01-01"))
	f.Add(rds("Y", phiMRN, "2"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, m, err := hl7flow.Event(raw, flowtest.ReceivedAt)
		if err != nil {
			return
		}
		for _, mp := range mappers {
			var res hl7flow.Result
			err := mp.Map(m, ev, tabs, &res)
			if err == nil {
				continue
			}
			text := err.Error()
			for _, tok := range tokens(raw, m.Delimiters()) {
				if !strings.Contains(text, tok) {
					continue
				}
				// The token may be the error's own words, a crosswalk value
				// or the control id: change it in the message, map again,
				// and fail only if the new value shows up in the new error.
				sub, ok := substitute(raw, tok, text)
				if !ok {
					continue
				}
				ev2, m2, err := hl7flow.Event(sub.raw, flowtest.ReceivedAt)
				if err != nil {
					continue
				}
				if err2 := mp.Map(m2, ev2, tabs, &res); err2 != nil && strings.Contains(err2.Error(), sub.with) {
					t.Fatalf("flow %s: the error shows a field value (%d bytes):\n%s\nmessage %q", mp.Flow, len(sub.with), err2, sub.raw)
				}
			}
		}
	})
}

// tokens are the runs of at least minLeak bytes between delimiters in the
// message's segments other than MSH (whose control id and type errors name).
func tokens(raw []byte, d hl7.Delimiters) []string {
	isDelim := func(c byte) bool {
		return c == '\r' || c == '\n' || c == d.Field || c == d.Component || c == d.Repetition ||
			(d.Escape != 0 && c == d.Escape) || (d.Subcomponent != 0 && c == d.Subcomponent)
	}
	var out []string
	for _, seg := range segments(raw) {
		if bytes.HasPrefix(seg, []byte("MSH")) {
			continue
		}
		start := 0
		for i := 0; i <= len(seg); i++ {
			if i < len(seg) && !isDelim(seg[i]) {
				continue
			}
			if tok := strings.TrimSpace(string(seg[start:i])); len(tok) >= minLeak {
				out = append(out, tok)
			}
			start = i + 1
		}
	}
	return out
}

func segments(raw []byte) [][]byte {
	return bytes.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' })
}

type substitution struct {
	raw  []byte
	with string
}

// substitute replaces tok in the non-MSH segments by a run of one letter
// of the same length that is in neither the message nor the error.
func substitute(raw []byte, tok, text string) (substitution, bool) {
	for _, c := range "qjzxkw" {
		with := strings.Repeat(string(c), len(tok))
		if bytes.Contains(raw, []byte(with)) || strings.Contains(text, with) {
			continue
		}
		var out []byte
		rest := raw
		for len(rest) > 0 {
			i := bytes.IndexAny(rest, "\r\n")
			seg, term := rest, []byte(nil)
			if i >= 0 {
				seg, term = rest[:i], rest[i:i+1]
			}
			if !bytes.HasPrefix(seg, []byte("MSH")) {
				seg = bytes.ReplaceAll(seg, []byte(tok), []byte(with))
			}
			out = append(append(out, seg...), term...)
			if i < 0 {
				break
			}
			rest = rest[i+1:]
		}
		return substitution{raw: out, with: with}, true
	}
	return substitution{}, false
}
