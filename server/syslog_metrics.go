package server

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a syslog message, the result label of
// trail_syslog_messages_total. Every message read is received, then
// exactly one of stored, unparsed, refused or failed once the engine has
// answered; a UDP datagram from a peer outside the allowed ranges is
// dropped and not received.
const (
	resultReceived = "received" // read off the transport
	resultStored   = "stored"   // mapped and durable
	resultUnparsed = "unparsed" // durable as atna.unparsed
	resultRefused  = "refused"  // its principal may not append to its stream: not stored
	resultFailed   = "failed"   // the engine stopped (closed or failed) before storing it
	resultDropped  = "dropped"  // UDP from a peer outside --syslog-allow
)

// syslogMetrics are the collectors of the syslog receivers.
type syslogMetrics struct {
	messages    *prometheus.CounterVec // by transport, result
	conns       *prometheus.GaugeVec   // open, by transport
	refused     *prometheus.CounterVec // connections closed at once, by transport, reason
	frameErrors *prometheus.CounterVec // connections ended by a framing error, by transport, kind
	udpDrops    atomic.Uint64          // datagrams the kernel dropped (SO_RXQ_OVFL)
	peak        *peakCounter
}

func newSyslogMetrics(reg prometheus.Registerer) (*syslogMetrics, error) {
	m := &syslogMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_syslog_messages_total",
			Help: "Syslog messages by transport and result: received, then stored, unparsed (stored as atna.unparsed), refused (no append grant) or failed (engine stopped); dropped: UDP from a peer not allowed.",
		}, []string{"transport", "result"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trail_syslog_connections", Help: "Open syslog connections, by transport.",
		}, []string{"transport"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_syslog_connections_refused_total",
			Help: "Syslog connections closed at once, by transport and reason (not_allowed, too_many, handshake, unknown_principal).",
		}, []string{"transport", "reason"}),
		frameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_syslog_frame_errors_total",
			Help: "Syslog connections closed on a framing error, by transport and kind (bad_frame, too_large, truncated).",
		}, []string{"transport", "kind"}),
	}
	drops := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "trail_syslog_udp_kernel_drops_total",
		Help: "Syslog UDP datagrams the kernel dropped because the socket's buffer was full (SO_RXQ_OVFL), as last reported.",
	}, func() float64 { return float64(m.udpDrops.Load()) })
	peak := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trail_syslog_window_peak_messages",
		Help: "The most messages one syslog connection has held handed to the engine and not yet stored (bounded by the window).",
	}, func() float64 {
		if m.peak == nil {
			return 0
		}
		return float64(m.peak.load())
	})
	for _, c := range []prometheus.Collector{m.messages, m.conns, m.refused, m.frameErrors, drops, peak} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// transportCounters are one transport's message counters, looked up once.
type transportCounters struct {
	received, stored, unparsed, refused, failed prometheus.Counter
}

func (m *syslogMetrics) forTransport(t string) *transportCounters {
	c := func(result string) prometheus.Counter { return m.messages.WithLabelValues(t, result) }
	return &transportCounters{received: c(resultReceived), stored: c(resultStored), unparsed: c(resultUnparsed),
		refused: c(resultRefused), failed: c(resultFailed)}
}

func (m *syslogMetrics) refusedConn(transport, reason string) {
	m.refused.WithLabelValues(transport, reason).Inc()
}
