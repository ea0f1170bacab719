package server_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail/server"
)

// BenchmarkSyslogTLS: 16 senders over TLS, each a connection sending ~2 KiB
// DICOM AuditMessages (octet counting) as fast as the server reads them,
// every event durably stored (sync always); reports messages a second,
// from the first write until the last message is stored.
func BenchmarkSyslogTLS(b *testing.B) {
	const senders = 16
	s := startSyslog(b, func(st *syslogSetup) { st.tls = true; st.cfg.TCPAddr, st.cfg.UDPAddr = "", "" })
	msg := octet(rfc5424(sample(b, "110104-instances-transferred")))
	cert := s.ca.issue(b, pacsPrincipal, false)
	per := (b.N + senders - 1) / senders
	conns := make([]interface{ Write([]byte) (int, error) }, senders)
	for i := range conns {
		c, err := s.dialTLS(b, &cert.tls)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	chunk := bytes.Repeat(msg, 64)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left := per; left > 0; {
				k := min(left, 64)
				if _, err := c.Write(chunk[:k*len(msg)]); err != nil {
					b.Error(err)
					return
				}
				left -= k
			}
		}()
	}
	wg.Wait()
	s.waitCount(b, server.TransportTLS, "stored", float64(per*senders))
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(per*senders)/elapsed.Seconds(), "msgs/s")
}
