package syslog_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/trailhq/trail/internal/syslog"
)

func Example() {
	var stream []byte
	stream = syslog.AppendOctetCounted(stream, []byte(`<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - <AuditMessage/>`))
	stream = append(stream, '\n') // tolerated between frames
	stream = syslog.AppendOctetCounted(stream, []byte(`<13>Dec  7 10:00:01 lab01 orders[42]: feed stopped`))
	stream = append(stream, "70000 <13>..."...)
	conn := bytes.NewReader(stream)
	r, err := syslog.NewReader(conn, syslog.Config{}) // auto-detected framing, 64 KiB maximum
	if err != nil {
		panic(err)
	}
	for {
		frame, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, syslog.ErrTooLarge) || errors.Is(err, syslog.ErrBadFrame) {
			fmt.Println("close the connection:", err)
			break
		}
		m := syslog.Parse(frame, time.Date(2026, 12, 7, 10, 0, 5, 0, time.UTC))
		x, isXML := syslog.AuditXML(m.Body)
		fmt.Printf("%s %s/%s at %s: %q (XML %v) %q\n", m.Format, m.Hostname, m.AppName, m.Timestamp.Format(time.RFC3339), x, isXML, m.Problems)
	}
	// Output:
	// rfc5424 pacs01/PACS at 2026-12-07T10:00:00Z: "<AuditMessage/>" (XML true) []
	// rfc3164 lab01/orders at 2026-12-07T10:00:01Z: "" (XML false) []
	// close the connection: syslog frame at byte 132: length 70000 is over the maximum of 65536 bytes
}
