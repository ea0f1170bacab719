package client

import "crypto/rand"

// idSource gives events random UUIDv4 ids (RFC 9562), lower-case with
// dashes. Never version 7: the server assigns UUIDv7 ids that encode the
// index, and refuses client ids that could equal one it will assign.
type idSource struct {
	store [16 * idBatch]byte
	buf   []byte // the random bytes of store not used yet, 16 per id
}

// idBatch is how many ids one read of the system's random source serves.
const idBatch = 256

func (s *idSource) next() string {
	if len(s.buf) < 16 {
		s.buf = s.store[:]
		rand.Read(s.buf) // never fails (crypto/rand, Go 1.24+)
	}
	u := s.buf[:16]
	s.buf = s.buf[16:]
	return formatV4(u)
}

const hexDigits = "0123456789abcdef"

// formatV4 writes 16 random bytes as a UUIDv4.
func formatV4(u []byte) string {
	var out [36]byte
	j := 0
	for i := 0; i < 16; i++ {
		c := u[i]
		switch i {
		case 6:
			c = 0x40 | c&0x0f // version 4
		case 8:
			c = 0x80 | c&0x3f // variant 10
		}
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(out[:])
}
