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
	first, _ := f.add("", "192.0.2.1")
	for i := 1; i < maxOIDCFlows; i++ {
		f.add("", fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	id, _ := f.add("/ui/patient", "198.51.100.7")
	if len(f.byKey) != maxOIDCFlows {
		t.Fatalf("%d flows held, want %d", len(f.byKey), maxOIDCFlows)
	}
	if fl := f.take(id); fl == nil || fl.next != "/ui/patient" {
		t.Fatalf("the newest flow of a full table is %+v, want it held", fl)
	}
	if f.take(first) != nil {
		t.Error("the oldest flow of a full table is still held")
	}

	var ids []string
	for range maxOIDCFlowsPerClient + 3 {
		id, _ := f.add("", "203.0.113.9")
		ids = append(ids, id)
	}
	if n := len(f.byClient["203.0.113.9"]); n != maxOIDCFlowsPerClient {
		t.Fatalf("one address holds %d flows, want %d", n, maxOIDCFlowsPerClient)
	}
	if f.take(ids[2]) != nil || f.take(ids[3]) == nil || f.take(ids[len(ids)-1]) == nil {
		t.Error("an address's oldest flows are not the ones dropped")
	}
}
