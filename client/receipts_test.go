package client

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
)

func sampleReceipts(n int) []trail.Receipt {
	rs := make([]trail.Receipt, n)
	for i := range rs {
		rs[i] = trail.Receipt{
			ID: fmt.Sprintf("0b7e3f6a-1c2d-4e5f-8a9b-%012d", i), Index: uint64(1<<40 + i),
			Stream: fmt.Sprintf("patient/%d", i%3), StreamSeq: uint64(i + 1),
			Recorded: "2026-11-25T10:00:00.123456789Z",
		}
		rs[i].LeafHash[0], rs[i].LeafHash[31] = byte(i), 0xab
	}
	return rs
}

func TestDecodeReceiptsServerLayout(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100} {
		want := sampleReceipts(n)
		b := []byte(`{"receipts":[`)
		for i := range want {
			if i > 0 {
				b = append(b, ',')
			}
			b = want[i].AppendJSON(b)
		}
		b = append(b, "]}\n"...)
		got, ok := parseReceipts(b, nil)
		if !ok {
			t.Fatalf("%d receipts: the server's layout was not parsed directly: %s", n, b)
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%d receipts (-want +got):\n%s", n, d)
		}
	}
}

func TestDecodeReceiptsFallsBack(t *testing.T) {
	tests := []string{
		`{"receipts":[{"id":"a\u002fb","index":1,"stream":"s","stream_seq":1,"recorded":"r","leaf_hash":"` + hash64 + `"}]}`,
		`{"receipts":[{"index":1,"id":"a","stream":"s","stream_seq":1,"recorded":"r","leaf_hash":"` + hash64 + `"}]}`,
		`{ "receipts" : [ {"id":"a","index":1,"stream":"s","stream_seq":1,"recorded":"r","leaf_hash":"` + hash64 + `"} ] }`,
		`{"receipts":[{"id":"a","index":1,"stream":"s","stream_seq":1,"recorded":"r","leaf_hash":"` + hash64 + `","extra":true}]}`,
	}
	for i, in := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if _, ok := parseReceipts([]byte(in), nil); ok {
				t.Fatal("parsed directly; want the fallback")
			}
			var want struct{ Receipts []trail.Receipt }
			if err := json.Unmarshal([]byte(in), &want); err != nil {
				t.Fatal(err)
			}
			got, err := decodeReceipts([]byte(in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want.Receipts, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	for _, in := range []string{`{}`, `{"receipts":[{"id":1}]}`, `[`, ``} {
		if _, err := decodeReceipts([]byte(in), nil); err == nil {
			t.Errorf("decodeReceipts(%q): no error", in)
		}
	}
}

const hash64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// FuzzParseReceipts: whatever the direct parser accepts, encoding/json
// reads the same way.
func FuzzParseReceipts(f *testing.F) {
	b := []byte(`{"receipts":[`)
	for i, r := range sampleReceipts(2) {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.AppendJSON(b)
	}
	f.Add(append(b, "]}"...))
	f.Add([]byte(`{"receipts":[]}`))
	f.Add([]byte(`{"receipts":[{"id":"a","index":01,"stream":"s","stream_seq":1,"recorded":"r","leaf_hash":"` + hash64 + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := parseReceipts(data, nil)
		if !ok {
			return
		}
		var want struct{ Receipts []trail.Receipt }
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("parsed directly, but encoding/json fails: %v", err)
		}
		if d := cmp.Diff(want.Receipts, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("(-json +direct):\n%s", d)
		}
	})
}

func BenchmarkDecodeReceipts(b *testing.B) {
	rs := sampleReceipts(1000)
	data, _ := json.Marshal(map[string]any{"receipts": rs})
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var dst []trail.Receipt
		for b.Loop() {
			dst, _ = decodeReceipts(data, dst)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v struct{ Receipts []trail.Receipt }
			json.Unmarshal(data, &v)
		}
	})
}
