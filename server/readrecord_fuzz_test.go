package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
)

// FuzzReadRecord: every query or tail the server accepts, from a client
// behind a trusted proxy (whatever its X-Forwarded-For), has read records the
// engine accepts ("no valid read is refused because of its own record"),
// whatever its parameters, User-Agent, reason and the patients of the
// events it returned (a stored event's patient may be nearly 64 KiB): each record is a valid event once its reserved stream
// is set aside, its details fit in 16 KiB as compact JSON, the whole event
// in 64 KiB, and the User-Agent kept is valid UTF-8 of at most 512 bytes.
func FuzzReadRecord(f *testing.F) {
	s := hdFuzzServer(f)
	ctl := strings.Repeat("\x01", 512)
	f.Add("lab.result", "dr-house", "p1", "", "", "curl/8", "p2", "patient/p3", false, "", "", "", "", "", false)
	f.Add(ctl, ctl, ctl, "emergency", "x"+strings.Repeat("\x01", 1023), "a"+strings.Repeat("é", 300), "p9", "ward/x", true, "", "", "", "", "", false)
	f.Add(strings.Repeat("<", 512), strings.Repeat(`"\`, 256), strings.Repeat("\u2028", 170), "treatment", "", "\xff\xfe", "", "patient/p1/labs", false, "", "", "", "", "", false)
	f.Add("t", "a", "", "system", "", "", "p1", "patient/p2", true, "", "", "", "", "", false)
	f.Add("t", "a", "p", "emergency", "\u200b", "", "", "", false, "", "", "", "", "", false)
	f.Add(ctl, ctl, "", "emergency", "x"+strings.Repeat("\x01", 1023), "", strings.Repeat("\x01", 10000)+strings.Repeat("p", 5000), "ward/x", true, "", "", "", "", "", false)
	f.Add("t", "a", "", "", "", "", strings.Repeat("p", 65380), "ward/x", false, "", "", "", "", "", false)
	f.Add("t", "a", "p1", "", "", "curl/8", "p2", "patient/p3", false, "203.0.113.7", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "17", "1000", false)
	f.Add("t", "a", "", "", "", "", "p2", "patient/p2", false, "198.51.100.1, 192.0.2.9, 2001:db8::1", "", "", "-1", "", true)
	f.Add(ctl, ctl, ctl, "emergency", "x"+strings.Repeat("\x01", 1023), "", "p9", "ward/x", false, strings.Repeat("1.2.3.4, ", 200)+"\xff", "", "", "", "", true)
	f.Add("t", "a", "", "", "", "", "", "", true, "::ffff:10.0.0.1, fe80::1%eth0", "2026-01-01", "x", "18446744073709551615", "0", false)
	f.Fuzz(func(t *testing.T, typ, actor, patient, purpose, reason, userAgent, retPatient, retStream string, admin bool,
		xff, since, until, after, limit string, tail bool) {
		q := url.Values{}
		for k, v := range map[string]string{"type": typ, "actor": actor, "patient": patient, "purpose": purpose, "reason": reason,
			"since": since, "until": until, "after": after, "limit": limit} {
			if v != "" && (!tail || k != "since" && k != "until" && k != "limit") { // a tail takes none of those
				q.Set(k, v)
			}
		}
		route, path := "GET /v1/events", "/v1/events?"
		if tail {
			route, path = "GET /v1/tail", "/v1/tail?"
		}
		r := httptest.NewRequest("GET", path+q.Encode(), nil)
		r.RemoteAddr = hdFuzzProxy + ":44321" // a trusted proxy: X-Forwarded-For names the client
		r.Header.Set("User-Agent", userAgent)
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		var ps params
		if tail {
			if ps = parseParams(r.URL.RawQuery, append(tailParams, purposeParams...)...); ps.err != nil {
				return
			}
			tailFilter(&ps)
			if ps.str("after") != "-1" {
				ps.uint("after", 0)
			}
			if ps.err != nil {
				return // 400: not recorded
			}
		} else {
			var pr *problem
			if _, ps, pr = parseQuery(r); pr != nil {
				return // 400: not recorded
			}
		}
		p := &Principal{Name: "dr-house", BreakGlass: true, Read: []string{"patient/*"}}
		if admin {
			p = &Principal{Name: "admin", Admin: true}
		}
		rd, pr := s.newRead(r, p, route, &ps)
		if pr != nil {
			return // 400 (bad purpose or reason): not recorded
		}
		rd.patient = patient
		hdReturn(t, rd, retStream, retPatient)
		hdReturn(t, rd, "patient/"+patient, "")
		hdReturn(t, rd, "trail/access", retPatient)
		evs, err := rd.records(trail.OutcomeSuccess, 3)
		if err != nil {
			t.Fatalf("accepted read has no records: %v", err)
		}
		if len(evs) == 0 {
			t.Fatal("accepted read has no records")
		}
		if tail { // a tail's later records, once it has delivered events
			rd.listed = true
			hdReturn(t, rd, retStream, retPatient)
			more, err := rd.records(trail.OutcomeSuccess, 1)
			if err != nil {
				t.Fatalf("a tail's later records: %v", err)
			}
			evs = append(evs, more...)
		}
		for i, ev := range evs {
			hdCheckRecord(t, i, ev, userAgent)
			if ev.Actor.Address != rd.s.cfg.TrustedProxies.ClientAddr(r) {
				t.Fatalf("record %d address %q, want the client's %q", i, ev.Actor.Address, rd.s.cfg.TrustedProxies.ClientAddr(r))
			}
			if a, err := netip.ParseAddr(ev.Actor.Address); err != nil || ev.Actor.Address != hdFuzzProxy && hdFuzzTrusted.Contains(a) {
				t.Fatalf("record %d address %q from X-Forwarded-For %q: want an address outside the trusted proxies (or the proxy itself)", i, ev.Actor.Address, xff)
			}
			if ev.Details != nil {
				var d auditDetails
				if err := json.Unmarshal(ev.Details, &d); err != nil || d.Endpoint != route {
					t.Fatalf("record %d details %s: want endpoint %q", i, hdTrim(ev.Details), route)
				}
			}
		}
	})
}

// hdFuzzProxy is the peer of the fuzzed requests, a trusted proxy in
// hdFuzzTrusted.
const hdFuzzProxy = "192.0.2.10"

var hdFuzzTrusted = netip.MustParsePrefix("192.0.2.0/24")

// hdFuzzServer is a server over an engine in a temporary directory, with
// read rates a fuzzer never reaches.
func hdFuzzServer(f *testing.F) *Server {
	l, err := trail.Open(f.TempDir(), trail.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	proxies, err := auth.ParseProxies([]string{hdFuzzTrusted.String()})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(l, Config{AdminToken: "trail_fuzz", TrustedProxies: proxies,
		ReadRate: Rate{PerSecond: 1e9, Burst: 1e9}, AdminReadRate: Rate{PerSecond: 1e9, Burst: 1e9}})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// hdReturn notes a stored event of stream about patient as returned by rd,
// when such an event could be stored.
func hdReturn(t *testing.T, rd *read, stream, patient string) {
	if trail.ValidateStream(stream) != nil || !utf8.ValidString(patient) {
		return
	}
	rec, err := json.Marshal(map[string]string{"stream": stream, "patient": patient, "type": "lab.result"})
	if err != nil {
		t.Fatal(err)
	}
	rd.returned(rec)
}

// hdCheckRecord checks that ev is an event the engine takes.
func hdCheckRecord(t *testing.T, i int, ev trail.Event, userAgent string) {
	t.Helper()
	if !trail.IsReservedStream(ev.Stream) {
		t.Fatalf("record %d in stream %q, want one of Trail's own", i, ev.Stream)
	}
	plain := ev
	plain.Stream = "fuzz/" + strings.TrimPrefix(ev.Stream, "trail/")
	if err := plain.Validate(); err != nil {
		t.Fatalf("record %d is not a valid event: %v\ndetails %s", i, err, hdTrim(ev.Details))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, ev.Details); err != nil {
		t.Fatalf("record %d details: %v", i, err)
	}
	if compact.Len() > trail.MaxDetailsSize {
		t.Fatalf("record %d details are %d bytes, over %d", i, compact.Len(), trail.MaxDetailsSize)
	}
	b, err := plain.MarshalJSON()
	if err != nil {
		t.Fatalf("record %d: encode: %v", i, err)
	}
	if n := len(b) + 64; n > trail.MaxEventSize { // with room for the id and the server's fields
		t.Fatalf("record %d is %d bytes with its id, over %d", i, n, trail.MaxEventSize)
	}
	ua := ev.Actor.UserAgent
	if len(ua) > maxUserAgent || !utf8.ValidString(ua) || !strings.HasPrefix(strings.ReplaceAll(strings.ToValidUTF8(userAgent, "\uFFFD"), "\x00", "\uFFFD"), ua) {
		t.Fatalf("record %d user_agent %q (%d bytes): want a valid UTF-8 prefix of the one sent (NUL and invalid bytes mended), at most %d bytes", i, hdTrim([]byte(ua)), len(ua), maxUserAgent)
	}
}

func hdTrim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
