package sinewv1

import (
	"cmp"
	"slices"
)

// Keys returns m as KeyValue entries sorted by key: the form of
// business_keys.
func Keys(m map[string]string) []*KeyValue {
	kv := make([]*KeyValue, 0, len(m))
	for k, v := range m {
		kv = append(kv, &KeyValue{Key: k, Value: v})
	}
	sortKeys(kv)
	return kv
}

// KeysOf returns the pairs key1, value1, key2, value2, ... as entries
// sorted by key (of a repeated key, the last pair wins), in two
// allocations: hot paths build business keys this way.
func KeysOf(pairs ...string) []*KeyValue {
	backing := make([]KeyValue, len(pairs)/2)
	kv := make([]*KeyValue, 0, len(backing))
	for i := range backing {
		k, v := pairs[2*i], pairs[2*i+1]
		if j := slices.IndexFunc(kv, func(e *KeyValue) bool { return e.Key == k }); j >= 0 {
			kv[j].Value = v
			continue
		}
		backing[i].Key, backing[i].Value = k, v
		kv = append(kv, &backing[i])
	}
	sortKeys(kv)
	return kv
}

// KeyMap returns entries as a map (of repeated keys, the last wins).
func KeyMap(kv []*KeyValue) map[string]string {
	m := make(map[string]string, len(kv))
	for _, e := range kv {
		m[e.GetKey()] = e.GetValue()
	}
	return m
}

// Key returns the value of key k in entries, or "".
func Key(kv []*KeyValue, k string) string {
	for i := len(kv) - 1; i >= 0; i-- { // the last of repeated keys wins, as in a map
		if kv[i].GetKey() == k {
			return kv[i].GetValue()
		}
	}
	return ""
}

// SetKey sets k to v in entries, keeping them sorted, and returns them.
func SetKey(kv []*KeyValue, k, v string) []*KeyValue {
	for i, e := range kv { // entries written as a map may come in any order
		if e.GetKey() == k {
			kv[i] = &KeyValue{Key: k, Value: v}
			return kv
		}
	}
	kv = append(kv, &KeyValue{Key: k, Value: v})
	sortKeys(kv)
	return kv
}

// MergeKeys returns own with the entries of from whose keys own lacks,
// sorted by key. own is reused.
func MergeKeys(own, from []*KeyValue) []*KeyValue {
	n := len(own)
	for _, e := range from {
		if !slices.ContainsFunc(own[:n], func(o *KeyValue) bool { return o.GetKey() == e.GetKey() }) {
			own = append(own, e)
		}
	}
	sortKeys(own)
	return own
}

func sortKeys(kv []*KeyValue) {
	slices.SortFunc(kv, func(a, b *KeyValue) int { return cmp.Compare(a.GetKey(), b.GetKey()) })
}

// BusinessKey returns the envelope's business key k, or "".
func (e *Envelope) BusinessKey(k string) string { return Key(e.GetBusinessKeys(), k) }
