package server

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// enableDropCount sets SO_RXQ_OVFL: each datagram then comes with the
// socket's count of datagrams dropped so far.
func enableDropCount(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// parseDropCount finds the SO_RXQ_OVFL count in a datagram's control
// messages; the kernel sends it once there have been drops.
func parseDropCount(oob []byte) (uint64, bool) {
	if len(oob) == 0 {
		return 0, false
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return uint64(binary.NativeEndian.Uint32(m.Data)), true
		}
	}
	return 0, false
}
