package console

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/sinewhq/sinew/pkg/hl7"
)

// field is one value of a decoded payload, named by its path: an HL7
// path (PID-5-1, OBX(1)-5) or a JSON path (entry[0].resource.id).
type field struct {
	Path, Value string
}

// maxFields bounds a decoded view: a dead letter is read by a person.
const maxFields = 2000

// decodePayload reads a dead letter's original bytes as HL7 v2 or JSON,
// value by value with its path; kind is "hl7", "json" or "" (neither:
// the page shows the text alone).
func decodePayload(b []byte) (kind string, fields []field) {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte("MSH")) {
		if m, err := hl7.Parse(t); err == nil {
			return "hl7", hl7Fields(m)
		}
	}
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		var v any
		d := json.NewDecoder(bytes.NewReader(t))
		d.UseNumber()
		if d.Decode(&v) == nil {
			jsonFields("", v, &fields)
			return "json", fields
		}
	}
	return "", nil
}

// hl7Fields lists every non-empty field of m by path; a field with
// repetitions or components is listed by those.
func hl7Fields(m *hl7.Message) []field {
	d := m.Delimiters()
	var out []field
	reps := map[string]int{}
	for i := 0; i < m.SegmentCount() && len(out) < maxFields; i++ {
		name := m.SegmentName(i)
		segRep := reps[name]
		reps[name]++
		parts := bytes.Split(m.Segment(i), []byte{d.Field})
		for j := 1; j < len(parts) && len(out) < maxFields; j++ {
			n := j
			if name == "MSH" {
				n = j + 1 // MSH-1 is the field separator itself
			}
			p := hl7.Path{Segment: name, SegRep: segRep, Field: n}
			if len(parts[j]) == 0 {
				continue
			}
			if name == "MSH" && n == 2 {
				out = append(out, field{p.String(), string(parts[j])})
				continue
			}
			rs := split(parts[j], d.Repetition)
			for r, rep := range rs {
				cs := split(rep, d.Component)
				for c, comp := range cs {
					if len(comp) == 0 {
						continue
					}
					q := p
					if len(rs) > 1 {
						q.Rep = r
					}
					if len(cs) > 1 {
						q.Component = c + 1
					}
					out = append(out, field{q.String(), string(hl7.Unescape(nil, comp, d))})
				}
			}
		}
	}
	return out
}

func split(b []byte, sep byte) [][]byte {
	if sep == 0 {
		return [][]byte{b}
	}
	return bytes.Split(b, []byte{sep})
}

// jsonFields lists the leaves of v by path, object keys sorted.
func jsonFields(path string, v any, out *[]field) {
	if len(*out) >= maxFields {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			jsonFields(p, v[k], out)
		}
	case []any:
		for i, e := range v {
			jsonFields(path+"["+strconv.Itoa(i)+"]", e, out)
		}
	case nil:
		*out = append(*out, field{path, "null"})
	case string:
		*out = append(*out, field{path, v})
	default:
		b, _ := json.Marshal(v)
		*out = append(*out, field{path, string(b)})
	}
}
