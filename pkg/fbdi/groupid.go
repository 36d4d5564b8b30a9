package fbdi

import (
	"crypto/sha256"
	"encoding/binary"
)

// GROUP_IDs from GroupID lie in [groupIDMin, groupIDMin+groupIDSpan): always
// 15 digits, so they fit GROUP_ID's NUMBER(18), stay clear of the small ids
// that Fusion sequences hand out, and are recognisable as Sinew's.
const (
	groupIDMin  = 100_000_000_000_000 // 10^14
	groupIDSpan = 900_000_000_000_000 // 9×10^14
)

// GroupID derives a GROUP_ID from a journal key such as
// "resolute:batch-20260115:J0001". The same key gives the same id in every
// run, process and release (the mapping is SHA-256 of the key, first 8 bytes
// big-endian, reduced into the 15-digit range; it must never change).
//
// Distinct keys collide with probability about n²/1.8×10^15 among n keys
// alive at once: 5.6×10^-8 for 10,000 journals, 5.6×10^-6 for 100,000,
// 5.6×10^-4 for a million. Keys should name the source system and batch so
// that only genuinely identical journals share an id.
func GroupID(key string) int64 {
	sum := sha256.Sum256([]byte(key))
	return groupIDMin + int64(binary.BigEndian.Uint64(sum[:8])%groupIDSpan)
}
