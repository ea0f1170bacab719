package store

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// Ids Trail assigns are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, 12
// random bits (rand_a), and in the 62 bits of rand_b the event's index, which
// RFC 9562 allows as a counter. So an assigned id is unique because indexes
// are, and an id sent again is found by reading the one record it names: no
// table of assigned ids is kept.
//
// A client id that would decode to an index not yet reached, and close
// enough to be reached (ReservedAhead), is refused, so that no later assigned
// id can equal it. A random UUIDv7 falls there with probability 2^-38.

const hexDigits = "0123456789abcdef"

// ReservedAhead is how far past the end of the log decoded indexes are refused.
const ReservedAhead = 1 << 24

// GeneratedID returns the id Trail assigns to the event at index.
func GeneratedID(now time.Time, index uint64) string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], uint64(now.UnixMilli())<<16|rand.Uint64()&0xfff)
	binary.BigEndian.PutUint64(u[8:], index)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // variant 10; index < 2^62
	var s [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(s[:])
}

// DecodeGeneratedID returns the index an id in the assigned form (lower-case
// canonical UUIDv7) names. Any such id decodes; whether Trail assigned it is
// known only by reading that record.
func DecodeGeneratedID(id string) (uint64, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || id[14] != '7' {
		return 0, false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c != '-' && !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(id[19:23]+id[24:36])); err != nil || b[0]&0xc0 != 0x80 {
		return 0, false
	}
	b[0] &= 0x3f
	return binary.BigEndian.Uint64(b[:]), true
}
