package syslog_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/trailhq/trail/internal/syslog"
)

// atnaFrame is an ATNA message of 2 KiB, as the throughput target
// assumes, on one line so that LF framing can carry it.
var atnaFrame = func() []byte {
	m := "<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + bom + strings.ReplaceAll(atnaXML, "\n", "")
	pad := 2048 - len(m) - len("<!---->")
	return []byte(strings.Replace(m, "</AuditMessage>", "<!--"+strings.Repeat("p", pad)+"--></AuditMessage>", 1))
}()

func benchmarkFraming(b *testing.B, frame func([]byte, []byte) []byte) {
	var stream []byte
	for range 1000 {
		stream = frame(stream, atnaFrame)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := syslog.NewReader(bytes.NewReader(stream), syslog.Config{})
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/msg")
}

func BenchmarkOctetFrames(b *testing.B) { benchmarkFraming(b, syslog.AppendOctetCounted) }

func BenchmarkLFFrames(b *testing.B) {
	benchmarkFraming(b, func(dst, m []byte) []byte { return append(append(dst, m...), '\n') })
}

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(atnaFrame)))
	b.ReportAllocs()
	for b.Loop() {
		m := syslog.Parse(atnaFrame, received)
		if len(m.Problems) > 0 || len(atnaFrame) != 2048 {
			b.Fatal(m.Problems, len(atnaFrame))
		}
		if _, ok := syslog.AuditXML(m.Body); !ok {
			b.Fatal("not XML")
		}
	}
}
