package atna

import (
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// fit keeps the event within trail.MaxEventSize as sent (the subtypes
// counted in): it drops entities from the last, then cuts every string
// (but the stream and the type, already bounded) to 32 KiB, 16 KiB, …
// until the event fits. A message of 64 KiB seldom needs either; both are
// noted.
func (mp *mapper) fit() {
	ev := &mp.out.Event
	n := len(ev.Entities)
	for len(ev.Entities) > 0 && mp.size() > trail.MaxEventSize {
		ev.Entities = ev.Entities[:len(ev.Entities)-1]
	}
	if dropped := n - len(ev.Entities); dropped > 0 {
		mp.note("the event would exceed %d bytes: its last %d entities left out", trail.MaxEventSize, dropped)
	}
	for limit := 32 << 10; mp.size() > trail.MaxEventSize && limit > 0; limit /= 2 {
		mp.note("the event would exceed %d bytes: its strings cut to %d bytes", trail.MaxEventSize, limit)
		for _, p := range mp.strings() {
			*p = cut(*p, limit)
		}
	}
}

// size is the event's size as sent, or a bound below MaxEventSize when the
// event is far from it (no string escaped in JSON grows more than six
// times), which saves encoding it.
func (mp *mapper) size() int {
	bound := 1024 + 6*(len(mp.out.Event.Stream)+len(mp.out.Event.Type)+len(mp.out.Event.Details))
	for _, st := range mp.out.Event.Subtypes {
		bound += 8 + 6*len(st)
	}
	for _, p := range mp.strings() {
		bound += 16 + 6*len(*p)
	}
	if bound <= trail.MaxEventSize {
		return bound
	}
	b, err := mp.out.Event.MarshalJSON()
	if err != nil {
		return trail.MaxEventSize + 1
	}
	return len(b)
}

// strings are the event's free-text members.
func (mp *mapper) strings() []*string {
	ev := &mp.out.Event
	ps := []*string{&ev.OutcomeDesc, &ev.Actor.ID, &ev.Actor.Name, &ev.Actor.Role, &ev.Actor.Address,
		&ev.Patient, &ev.Purpose}
	if s := ev.Source; s != nil {
		ps = append(ps, &s.ID, &s.Site, &s.Type)
	}
	for i := range ev.Entities {
		e := &ev.Entities[i]
		ps = append(ps, &e.Type, &e.ID, &e.Role, &e.Name)
	}
	return ps
}

// cut cuts s to at most n bytes, at a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
