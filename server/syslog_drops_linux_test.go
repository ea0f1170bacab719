package server

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUDPDropCount: with SO_RXQ_OVFL set, a datagram read after the
// kernel dropped others for want of buffer room reports how many.
func TestUDPDropCount(t *testing.T) {
	c, err := listenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.SyscallConn()
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	s, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 200 {
		s.Write(make([]byte, 1000))
	}
	// A datagram carries the count as it was when the datagram was queued:
	// read those queued before the drops, then one sent after them.
	buf, oob := make([]byte, 2000), make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		if _, _, _, _, err := c.ReadMsgUDPAddrPort(buf, oob); err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s.Write([]byte("after"))
	_, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	drops, ok := parseDropCount(oob[:oobn])
	if !ok || drops == 0 {
		t.Fatalf("drop count %d (reported: %v) after overflowing a 4 KiB buffer with 200 datagrams", drops, ok)
	}
	t.Logf("%d datagrams dropped", drops)
}
