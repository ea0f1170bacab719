package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// TestDetailsJSONBounded: details stay within trail.MaxDetailsSize however
// much their strings grow when escaped (a control character takes six
// bytes in JSON).
func TestDetailsJSONBounded(t *testing.T) {
	worst := strings.Repeat("\x01", 4096)
	problems := make([]string, 500)
	for i := range problems {
		problems[i] = worst
	}
	rc := received{Transport: "tcp", Peer: "[2001:db8::1]:65535", Principal: worst[:128],
		Hostname: clip(worst, maxHeaderField), AppName: clip(worst, maxHeaderField), ProcID: clip(worst, maxHeaderField),
		MsgID: clip(worst, maxHeaderField), SyslogProblems: clipAll(problems), Problems: clipAll(problems)}
	b := detailsJSON(receivedDetails{Received: rc, Unparsed: clip(worst, maxWhy)})
	if len(b) > trail.MaxDetailsSize || !json.Valid(b) {
		t.Fatalf("details of %d bytes (valid JSON: %v)", len(b), json.Valid(b))
	}
	var d receivedDetails
	json.Unmarshal(b, &d)
	if len(d.Received.Problems) != 1 || !strings.Contains(d.Received.Problems[0], "problems left out") {
		t.Errorf("problems: %q", d.Received.Problems)
	}
}
