package bus

import "github.com/sinewhq/sinew/pkg/ids"

// EventID is ids.EventID, kept for callers of the runtime.
func EventID(key string) string { return ids.EventID(key) }

// HashKey is ids.HashKey, kept for callers of the runtime.
func HashKey(parts ...string) string { return ids.HashKey(parts...) }
