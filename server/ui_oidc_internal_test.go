package server

import (
	"fmt"
	"testing"
)

// TestOIDCFlowsFull: a table full of live sign-ins from many addresses
// makes room for a new one by dropping the oldest; one address holds at
// most maxOIDCFlowsPerClient, its oldest dropped first.
func TestOIDCFlowsFull(t *testing.T) {
	f := newOIDCFlows()
	states := map[string]string{} // flow id → its state
	add := func(next, client string) string {
		id, fl := f.add(next, client)
		states[id] = fl.state
		return id
	}
	take := func(id string) *oidcFlow {
		fl, _ := f.take(id, states[id])
		return fl
	}
	first := add("", "192.0.2.1")
	for i := 1; i < maxOIDCFlows; i++ {
		add("", fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	id := add("/ui/patient", "198.51.100.7")
	if len(f.byKey) != maxOIDCFlows {
		t.Fatalf("%d flows held, want %d", len(f.byKey), maxOIDCFlows)
	}
	if fl := take(id); fl == nil || fl.next != "/ui/patient" {
		t.Fatalf("the newest flow of a full table is %+v, want it held", fl)
	}
	if take(first) != nil {
		t.Error("the oldest flow of a full table is still held")
	}

	var ids []string
	for range maxOIDCFlowsPerClient + 3 {
		ids = append(ids, add("", "203.0.113.9"))
	}
	if n := len(f.byClient["203.0.113.9"]); n != maxOIDCFlowsPerClient {
		t.Fatalf("one address holds %d flows, want %d", n, maxOIDCFlowsPerClient)
	}
	if take(ids[2]) != nil || take(ids[3]) == nil || take(ids[len(ids)-1]) == nil {
		t.Error("an address's oldest flows are not the ones dropped")
	}
}

// TestOIDCFlowWrongStateKept: a callback with another state (a link from
// another site, sent to a browser signing in) does not end the sign-in in
// progress; the right state then completes it, once.
func TestOIDCFlowWrongStateKept(t *testing.T) {
	f := newOIDCFlows()
	id, fl := f.add("", "192.0.2.1")
	for _, bad := range []string{"", "x", fl.state + "x", fl.nonce} {
		if got, mismatch := f.take(id, bad); got != nil || !mismatch {
			t.Fatalf("state %q: took %v, mismatch %v; want refused and kept", bad, got, mismatch)
		}
	}
	if got, _ := f.take(id, fl.state); got != fl {
		t.Fatalf("the flow's own state did not complete it")
	}
	if got, mismatch := f.take(id, fl.state); got != nil || mismatch {
		t.Fatalf("a completed flow was taken again")
	}
}
