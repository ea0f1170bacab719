package trail

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// uuidGen makes UUIDv7 ids (RFC 9562): 48 bits of Unix milliseconds, then 74
// random bits. It is used by the sequencer goroutine only.
type uuidGen struct {
	rng *rand.ChaCha8
}

func newUUIDGen() *uuidGen {
	var seed [32]byte
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(seed[8*i:], rand.Uint64())
	}
	return &uuidGen{rng: rand.NewChaCha8(seed)}
}

func (g *uuidGen) newV7(now time.Time) string {
	var u [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint64(u[8:], g.rng.Uint64())
	binary.BigEndian.PutUint64(u[:8], ms<<16|g.rng.Uint64()&0xfff)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // variant 10
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
