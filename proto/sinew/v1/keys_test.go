package sinewv1

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestKeys(t *testing.T) {
	kv := Keys(map[string]string{"b": "2", "a": "1"})
	if len(kv) != 2 || kv[0].Key != "a" || kv[1].Key != "b" {
		t.Fatalf("not sorted: %v", kv)
	}
	kv = SetKey(kv, "c", "3")
	kv = SetKey(kv, "a", "one")
	if Key(kv, "a") != "one" || Key(kv, "c") != "3" || Key(kv, "z") != "" || len(kv) != 3 || kv[2].Key != "c" {
		t.Fatalf("%v", kv)
	}
	if kv := KeysOf("b", "1", "a", "2", "b", "3"); len(kv) != 2 || kv[0].Key != "a" || kv[1].Value != "3" {
		t.Fatalf("KeysOf: %v", kv)
	}
	m := MergeKeys([]*KeyValue{{Key: "b", Value: "own"}}, kv)
	if got := KeyMap(m); len(got) != 3 || got["b"] != "own" || got["a"] != "one" || m[0].Key != "a" {
		t.Fatalf("%v", m)
	}
}

// Business keys written as a map<string, string> (as before, and by any
// producer that still does) read as KeyValue entries, and back.
func TestKeysReadMapWire(t *testing.T) {
	var b []byte
	for _, e := range [][2]string{{"control_id", "MSG1"}, {"facility", "STMARYS"}} {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, e[0])
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, e[1])
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	var env Envelope
	if err := proto.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env.BusinessKey("control_id") != "MSG1" || env.BusinessKey("facility") != "STMARYS" {
		t.Fatalf("%v", env.BusinessKeys)
	}
	out, err := proto.Marshal(&env)
	if err != nil || string(out) != string(b) {
		t.Fatalf("re-encoded %x, want %x (%v)", out, b, err)
	}
}
