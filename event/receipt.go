package event

import "strconv"

// AppendJSON appends r as JSON, as encoding/json would write it, without
// reflection: the server answers batches of thousands of receipts.
func (r *Receipt) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, r.Index, 10)
	dst = append(dst, `,"stream":`...)
	dst = appendString(dst, r.Stream)
	dst = append(dst, `,"stream_seq":`...)
	dst = strconv.AppendUint(dst, r.StreamSeq, 10)
	dst = append(dst, `,"recorded":`...)
	dst = appendString(dst, r.Recorded)
	dst = append(dst, `,"leaf_hash":"`...)
	dst = hexAppend(dst, r.LeafHash[:])
	return append(dst, `"}`...)
}
