package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
)

// maxDatagram is the most a UDP datagram carries over IPv4 (65,535 less
// the IP and UDP headers); RFC 5426 puts one message in each.
const maxDatagram = 65507

// listenUDP opens the UDP socket, asking the kernel to report how many
// datagrams it dropped for want of room (SO_RXQ_OVFL, where supported).
func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("syslog over udp: %w", err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("syslog over udp: %w", err)
	}
	if err := enableDropCount(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("syslog over udp: count kernel drops: %w", err)
	}
	return c, nil
}

// serveUDP reads datagrams until Shutdown closes the socket, one message
// each, through one window: when it is full the receiver stops reading,
// the socket's buffer fills and the kernel drops (and counts) datagrams.
func (r *SyslogReceiver) serveUDP() {
	defer r.wg.Done()
	gauge := r.m.conns.WithLabelValues(TransportUDP)
	gauge.Inc()
	defer gauge.Dec()
	k := r.newSink(origin{transport: TransportUDP, principal: r.cfg.Principal})
	defer k.drain()
	dropped := r.m.messages.WithLabelValues(TransportUDP, resultDropped)
	buf := make([]byte, maxDatagram+1)
	oob := make([]byte, 64)
	for {
		n, oobn, _, from, err := r.udp.ReadMsgUDPAddrPort(buf, oob)
		if drops, ok := parseDropCount(oob[:oobn]); ok {
			r.m.udpDrops.Store(drops)
		}
		if err != nil {
			if !r.stopping() && !errors.Is(err, net.ErrClosed) {
				r.s.log.Error("syslog: reading UDP failed; no more datagrams", "err", err)
			}
			return
		}
		if !r.allowed(from.Addr()) {
			dropped.Inc()
			r.logs.warn(r.s.log, "udp_not_allowed", "syslog: datagram dropped: peer not in --syslog-allow", "peer", from.String())
			continue
		}
		k.o.peer = from.String()
		if err := k.handle(bytes.Clone(buf[:n])); err != nil {
			return
		}
	}
}
