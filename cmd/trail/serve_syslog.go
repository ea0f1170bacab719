package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/trailhq/trail/server"
)

// serveSyslog are the flags of trail serve for IHE ATNA syslog (ITI-20).
type serveSyslog struct {
	tls, tcp, udp string
	allow         stringList
	principal     string
	maxConns      int
	window        int
}

func (s *serveSyslog) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.tls, "syslog-tls", "", "receive IHE ATNA audit messages by syslog over TLS (RFC 5425, octet counting) on `ADDR` (e.g. :6514); needs --tls-cert, --tls-key and --client-ca: each sender presents a client certificate whose subject CN is a principal with append grants")
	fs.StringVar(&s.tcp, "syslog-tcp", "", "receive syslog over plain TCP (RFC 6587: octet counting or LF framing, detected) on `ADDR`; no authentication: only peers in --syslog-allow, appending as --syslog-principal")
	fs.StringVar(&s.udp, "syslog-udp", "", "receive syslog over UDP (RFC 5426, one message a datagram) on `ADDR`; as --syslog-tcp, only from --syslog-allow, as --syslog-principal")
	fs.Var(&s.allow, "syslog-allow", "the peers --syslog-tcp and --syslog-udp take messages from, as `CIDR` (repeatable, or comma-separated; default 127.0.0.0/8 and ::1/128); others are disconnected or dropped, counted and logged")
	fs.StringVar(&s.principal, "syslog-principal", "", "the principal (trail token create --name `NAME`) that --syslog-tcp and --syslog-udp append as; its append grants decide which messages are stored (grant patient/* and atna/*)")
	fs.IntVar(&s.maxConns, "syslog-max-conns", server.DefaultSyslogMaxConns, "syslog TLS and TCP connections open at once; more are closed at once")
	fs.IntVar(&s.window, "syslog-window", server.DefaultSyslogWindow, "messages of one syslog connection handed to the engine and not yet stored; a full window stops reading it (backpressure)")
}

// config turns the flags into the receiver's configuration; ok is false
// when no syslog listener is asked for.
func (s *serveSyslog) config() (cfg server.SyslogConfig, ok bool, err error) {
	cfg = server.SyslogConfig{TLSAddr: s.tls, TCPAddr: s.tcp, UDPAddr: s.udp, Principal: s.principal,
		MaxConns: s.maxConns, Window: s.window}
	if s.tls == "" && s.tcp == "" && s.udp == "" {
		if s.principal != "" || len(s.allow) > 0 {
			return cfg, false, errors.New("--syslog-principal and --syslog-allow need --syslog-tcp or --syslog-udp")
		}
		return cfg, false, nil
	}
	if (s.tcp != "" || s.udp != "") && s.principal == "" {
		return cfg, false, errors.New("--syslog-tcp and --syslog-udp have no authentication: name the principal they append as with --syslog-principal " +
			"(create one with: trail token create --name atna --append 'patient/*' --append 'atna/*')")
	}
	if s.maxConns < 1 || s.window < 1 {
		return cfg, false, fmt.Errorf("--syslog-max-conns %d and --syslog-window %d must be at least 1", s.maxConns, s.window)
	}
	for _, v := range s.allow {
		for _, c := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				return cfg, false, fmt.Errorf("--syslog-allow %q: want a CIDR such as 10.0.0.0/8 or 127.0.0.1/32", c)
			}
			cfg.Allow = append(cfg.Allow, p.Masked())
		}
	}
	return cfg, true, nil
}

// syslogUsage is the part of trail serve --help about syslog.
const syslogUsage = `
IHE ATNA syslog (ITI-20, Record Audit Event):
  Each syslog message (RFC 5424, RFC 3164 tolerated) carrying a DICOM
  AuditMessage (or RFC 3881) is mapped to an event (patient/<id> or
  atna/<AuditSourceID>) and stored with the message as its original and
  details.received (transport, peer, syslog header). A message that cannot
  be parsed or mapped is stored as type atna.unparsed in atna/unparsed; one
  whose principal may not append to its stream is refused and logged.

  The principal must exist when trail serve starts (trail token needs the
  data directory an earlier trail serve made).

  Over TLS (mutual TLS, the IHE ATNA secure node profile):
    trail token create --data DIR --name pacs.ward --append 'patient/*' --append 'atna/*'
    trail serve --data DIR --tls-cert server.pem --tls-key server.key \
        --client-ca senders-ca.pem --syslog-tls :6514
  The sender's client certificate must be signed by a CA in --client-ca and
  have the principal's name as its subject CN.

  Over TCP and UDP (no authentication; loopback or a trusted network only):
    trail token create --data DIR --name atna --append 'patient/*' --append 'atna/*'
    trail serve --data DIR --syslog-tcp 127.0.0.1:6601 --syslog-udp 127.0.0.1:514 \
        --syslog-principal atna --syslog-allow 127.0.0.0/8,10.1.0.0/16

  Metrics: trail_syslog_messages_total{transport,result}, trail_syslog_connections,
  trail_syslog_connections_refused_total, trail_syslog_frame_errors_total,
  trail_syslog_udp_kernel_drops_total.
`
