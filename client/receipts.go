package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/trailhq/trail"
)

// decodeReceipts decodes a batch answer, {"receipts":[…]}, into dst[:0].
// The server writes receipts in one fixed layout (trail.Receipt.AppendJSON);
// parsing that layout directly costs a fraction of encoding/json, which was
// an eighth of the client's CPU. Anything else, such as escaped strings or
// members in another order, goes to encoding/json.
func decodeReceipts(data []byte, dst []trail.Receipt) ([]trail.Receipt, error) {
	if rs, ok := parseReceipts(data, dst[:0]); ok {
		return rs, nil
	}
	var resp struct {
		Receipts []trail.Receipt `json:"receipts"`
	}
	resp.Receipts = dst[:0]
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, err
	}
	if resp.Receipts == nil {
		return nil, fmt.Errorf("no receipts member in %.100q", data)
	}
	return resp.Receipts, nil
}

// parseReceipts reads the layout the server writes; ok is false on any
// difference.
func parseReceipts(data []byte, dst []trail.Receipt) (rs []trail.Receipt, ok bool) {
	p := layout{b: bytes.TrimRight(data, " \t\r\n"), ok: true}
	p.lit(`{"receipts":[`)
	if p.ok && p.i < len(p.b) && p.b[p.i] == ']' {
		p.lit(`]}`)
		return dst, p.ok && p.i == len(p.b)
	}
	for p.ok {
		var r trail.Receipt
		p.lit(`{"id":`)
		r.ID = p.str()
		p.lit(`,"index":`)
		r.Index = p.num()
		p.lit(`,"stream":`)
		r.Stream = p.str()
		p.lit(`,"stream_seq":`)
		r.StreamSeq = p.num()
		p.lit(`,"recorded":`)
		r.Recorded = p.str()
		p.lit(`,"leaf_hash":`)
		r.LeafHash = p.hash()
		p.lit(`}`)
		dst = append(dst, r)
		if p.ok && p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
			continue
		}
		p.lit(`]}`)
		break
	}
	return dst, p.ok && p.i == len(p.b)
}

// layout reads expected JSON text; the first mismatch clears ok and every
// later step does nothing.
type layout struct {
	b  []byte
	i  int
	ok bool
}

func (p *layout) lit(s string) {
	if p.ok && bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return
	}
	p.ok = false
}

// str reads a string without escapes or control characters.
func (p *layout) str() string {
	if !p.ok || p.i >= len(p.b) || p.b[p.i] != '"' {
		p.ok = false
		return ""
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := string(p.b[p.i+1 : j])
			p.i = j + 1
			return s
		case c == '\\' || c < 0x20 || c >= 0x80:
			p.ok = false
			return ""
		}
	}
	p.ok = false
	return ""
}

// num reads an unsigned integer without leading zeros.
func (p *layout) num() uint64 {
	j, n := p.i, uint64(0)
	for ; p.ok && j < len(p.b) && '0' <= p.b[j] && p.b[j] <= '9'; j++ {
		d := uint64(p.b[j] - '0')
		if n > (1<<64-1-d)/10 {
			p.ok = false
		}
		n = n*10 + d
	}
	if j == p.i || j-p.i > 1 && p.b[p.i] == '0' {
		p.ok = false
	}
	p.i = j
	return n
}

// hash reads a quoted lower-case hex hash.
func (p *layout) hash() trail.Hash {
	var h trail.Hash
	end := p.i + 2 + 2*len(h)
	if !p.ok || end > len(p.b) || p.b[p.i] != '"' || p.b[end-1] != '"' {
		p.ok = false
		return h
	}
	for _, c := range p.b[p.i+1 : end-1] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			p.ok = false
			return h
		}
	}
	hex.Decode(h[:], p.b[p.i+1:end-1])
	p.i = end
	return h
}
