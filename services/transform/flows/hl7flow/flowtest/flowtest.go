// Package flowtest runs the golden tests of the HL7 flows: every
// testdata/*.hl7 is mapped with the project's flows.yaml and the demo
// crosswalks, and what it maps to (commands as protojson, or the error) is
// compared with testdata/<name>.golden.json.
package flowtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/hl7receipt"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

// Root is the repository root, seen from a flow's directory.
const Root = "../../../.."

// ReceivedAt is the receipt time of every golden input.
var ReceivedAt = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// Mapper returns flowID's mapper from the project's flows.yaml.
func Mapper(tb testing.TB, flowID string) *hl7flow.Mapper {
	tb.Helper()
	inv, err := flows.Load(filepath.Join(Root, "flows.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	f, ok := inv.Get(flowID)
	if !ok {
		tb.Fatalf("no flow %s", flowID)
	}
	mp, err := hl7flow.New(f)
	if err != nil {
		tb.Fatal(err)
	}
	mp.Secret = []byte(Secret)
	return mp
}

// Secret is the golden mappers' secret for field value references.
const Secret = "flowtest-secret"

// Tables returns the demo crosswalks (deploy/demo).
func Tables(tb testing.TB) hl7flow.Tables {
	tb.Helper()
	read := func(kind, file string) *crosswalk.Codes {
		data, err := os.ReadFile(filepath.Join(Root, "deploy/demo", file))
		if err != nil {
			tb.Fatal(err)
		}
		c, err := crosswalk.ParseCodes(kind, bytes.NewReader(data), "demo")
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	return hl7flow.Tables{Items: read(crosswalk.Item, "items.csv"), Departments: read(crosswalk.Department, "departments.csv")}
}

// Outcome is what one golden input maps to.
type Outcome struct {
	Detail    string           `json:"detail,omitempty"`
	Error     string           `json:"error,omitempty"`
	Permanent bool             `json:"permanent,omitempty"`
	Unmapped  *UnmappedSummary `json:"unmapped,omitempty"`
	Commands  []GoldenCommand  `json:"commands"`
}

// UnmappedSummary names the unmapped code of an error.
type UnmappedSummary struct{ Kind, Code, Version string }

// GoldenCommand is one command of an outcome.
type GoldenCommand struct {
	Subject string          `json:"subject"`
	MsgID   string          `json:"msg_id"`
	Type    string          `json:"type"`
	Command json.RawMessage `json:"command"`
}

// Map maps one input file's bytes.
func Map(tb testing.TB, mp *hl7flow.Mapper, t hl7flow.Tables, raw []byte) (Outcome, []hl7flow.Command) {
	tb.Helper()
	// The event ingest stores: its own receipt builder, routed to the flow.
	m, err := hl7.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	body := hl7receipt.BodyHash(m)
	ev := hl7receipt.New(m, raw, hl7receipt.Receipt{MsgID: hl7receipt.MsgID(m, body), BodySHA256: body, Flow: mp.Flow, ReceivedAt: ReceivedAt})
	var res hl7flow.Result
	out := Outcome{Commands: []GoldenCommand{}}
	if err := mp.Map(m, ev, t, &res); err != nil {
		out.Error = err.Error()
		out.Permanent = bus.IsPermanent(err)
		var ue *hl7flow.UnmappedError
		if errors.As(err, &ue) {
			out.Unmapped = &UnmappedSummary{Kind: ue.Kind, Code: ue.Code, Version: ue.Version}
		}
		return out, nil
	}
	out.Detail = res.Detail
	for _, c := range res.Commands {
		js, err := protojson.Marshal(c.Msg)
		if err != nil {
			tb.Fatal(err)
		}
		var v any // protojson's spacing is unstable by design: normalise it
		if err := json.Unmarshal(js, &v); err != nil {
			tb.Fatal(err)
		}
		norm, _ := json.MarshalIndent(keysAsObjects(v), "      ", "  ")
		out.Commands = append(out.Commands, GoldenCommand{Subject: c.Subject, MsgID: c.MsgID,
			Type: string(proto.MessageName(c.Msg).Name()), Command: norm})
	}
	return out, res.Commands
}

// Golden maps every testdata/*.hl7 and compares or (update) rewrites its golden file.
func Golden(t *testing.T, flowID string, update bool) map[string]Outcome {
	mp := Mapper(t, flowID)
	tabs := Tables(t)
	files, _ := filepath.Glob("testdata/*.hl7")
	if len(files) == 0 {
		t.Fatal("no testdata/*.hl7")
	}
	all := map[string]Outcome{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := Map(t, mp, tabs, raw)
		name := strings.TrimSuffix(filepath.Base(f), ".hl7")
		all[name] = out
		got, _ := json.MarshalIndent(out, "", "  ")
		got = append(got, '\n')
		golden := strings.TrimSuffix(f, ".hl7") + ".golden.json"
		if update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Errorf("%s: %v (run go test -update)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: output differs from %s (go test -update rewrites it):\n%s", name, golden, got)
		}
	}
	return all
}

// keysAsObjects shows KeyValue lists (business keys) as JSON objects, as
// they read best in a golden file.
func keysAsObjects(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = keysAsObjects(e)
		}
		return x
	case []any:
		m := map[string]any{}
		for _, e := range x {
			kv, ok := e.(map[string]any)
			key, isKey := kv["key"].(string)
			if !ok || !isKey || len(kv) > 2 {
				for i, e := range x {
					x[i] = keysAsObjects(e)
				}
				return x
			}
			m[key] = kv["value"]
		}
		if len(x) == 0 {
			return x
		}
		return m
	}
	return v
}
