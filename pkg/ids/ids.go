// Package ids derives stable identifiers from keys: a redelivered or resent
// input gets the same id. Pure: no I/O, no runtime dependencies.
package ids

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// EventID is a UUID-shaped id derived from a key (a message id, a file
// hash): a redelivered or resent input keeps its event id.
func EventID(key string) string {
	x := HashKey(key)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// HashKey is a 32-hex-digit key for identifiers that may hold any
// character (KV keys, subject tokens): SHA-256 of the parts joined by NUL.
func HashKey(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}
