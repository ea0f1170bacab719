package syslog_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailhq/trail/internal/syslog"
)

// TestLogger reads what util-linux logger, a sender nobody here wrote, sends
// over TCP in RFC 5424, with octet counting and with LF framing, the
// framing detected.
func TestLogger(t *testing.T) {
	path, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger (util-linux) is not installed: install util-linux (bsdutils on Debian) to run this test")
	}
	t.Run("octet counting", func(t *testing.T) { testLogger(t, path, syslog.OctetCounting, "--octet-count") })
	t.Run("LF framing", func(t *testing.T) { testLogger(t, path, syslog.NonTransparent) })
}

func testLogger(t *testing.T, path string, framing syslog.Framing, args ...string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := acceptOne(ln, framing)

	xmlLine := strings.ReplaceAll(atnaXML, "\n", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	args = append(args, "--rfc5424", "--tcp", "--server", "127.0.0.1", "--port", port,
		"--tag", "PACS", "--msgid", "IHE+RFC-3881", "--priority", "authpriv.notice", "--size", "65536",
		"--sd-id", "trail@32473", "--sd-param", `note="a \"quoted\" \] value"`)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(xmlLine + "\nsecond line\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	res := <-done
	if res.err != io.EOF {
		t.Fatalf("reading what logger sent: %v (read %q)", res.err, res.msgs)
	}
	if len(res.msgs) != 2 {
		t.Fatalf("read %d messages from logger, want 2: %q", len(res.msgs), res.msgs)
	}
	for i, body := range []string{xmlLine, "second line"} {
		m := syslog.Parse(res.msgs[i], time.Now())
		if m.Format != syslog.FormatRFC5424 || m.Facility != 10 || m.Severity != 5 || m.AppName != "PACS" || m.MsgID != "IHE+RFC-3881" ||
			string(m.Body) != body || len(m.Problems) > 0 || time.Since(m.Timestamp).Abs() > time.Minute {
			t.Errorf("message %d %q parsed as %+v", i, res.msgs[i], m)
		}
		var note []syslog.SDParam
		for _, e := range m.StructuredData {
			if e.ID == "trail@32473" {
				note = e.Params
			}
		}
		if diff := cmp.Diff([]syslog.SDParam{{Name: "note", Value: `a "quoted" ] value`}}, note); diff != "" {
			t.Errorf("message %d: structured data (-want +got):\n%s\nof %q", i, diff, res.msgs[i])
		}
	}
	if x, ok := syslog.AuditXML(syslog.Parse(res.msgs[0], time.Now()).Body); !ok || string(x) != xmlLine {
		t.Errorf("AuditXML of logger's first message: %q, %v", x, ok)
	}
}

type readResult struct {
	msgs [][]byte
	err  error // what ended the reading: io.EOF when the sender closed between frames
}

// acceptOne reads every message of the first connection to ln, with
// auto-detected framing, and sends them once the connection ends; it checks
// the framing detected is want.
func acceptOne(ln net.Listener, want syslog.Framing) <-chan readResult {
	done := make(chan readResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- readResult{err: err}
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		r, _ := syslog.NewReader(c, syslog.Config{})
		var res readResult
		for {
			m, err := r.Next()
			if err != nil {
				res.err = err
				if r.Framing() != want {
					res.err = fmt.Errorf("framing detected: %v, want %v (then %w)", r.Framing(), want, err)
				}
				done <- res
				return
			}
			res.msgs = append(res.msgs, m)
		}
	}()
	return done
}
