package event

import (
	"encoding/json"
	"testing"

	"pgregory.net/rapid"
)

// TestReceiptAppendJSON: the hand-written encoding decodes with
// encoding/json to the same receipt, for any receipt.
func TestReceiptAppendJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := Receipt{
			ID: rapid.String().Draw(t, "id"), Index: rapid.Uint64().Draw(t, "index"),
			Stream: rapid.String().Draw(t, "stream"), StreamSeq: rapid.Uint64().Draw(t, "seq"),
			Recorded: rapid.String().Draw(t, "recorded"),
		}
		copy(r.LeafHash[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "leaf"))
		var back Receipt
		if err := json.Unmarshal(r.AppendJSON(nil), &back); err != nil {
			t.Fatalf("AppendJSON wrote invalid JSON: %v", err)
		}
		if back != r {
			t.Fatalf("round trip: got %+v, want %+v", back, r)
		}
	})
}
