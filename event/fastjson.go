package event

import (
	"encoding/json"
	"unicode/utf8"
)

// parseFast decodes the common shape of an event without encoding/json: the
// schema's members, each once, with exact names; strings without escapes;
// no nulls. It reports false for anything else, and the caller then decodes
// with encoding/json, which gives the precise error (or the same event: the
// fast path never accepts what the full decoder would decode differently,
// which FuzzParseFast checks). Details are not checked here: Parse
// validates the event next.
//
// All strings share one copy of data, so a decoded event costs a handful of
// allocations instead of one per field.
func parseFast(data []byte) (eventWire, bool) {
	p := fastParser{s: string(data)}
	var w eventWire
	ok := p.object(func(name string) bool { return p.eventMember(&w, name) })
	p.ws()
	return w, ok && p.i == len(p.s)
}

type fastParser struct {
	s    string
	i    int
	seen uint32 // members of the object being read, by bit
}

func (p *fastParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c.
func (p *fastParser) next(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, and valid
// UTF-8 (encoding/json would replace invalid bytes).
func (p *fastParser) str() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			return v, ascii || utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// object reads an object, calling member for each member name with the
// parser at its value.
func (p *fastParser) object(member func(name string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		name, ok := p.str()
		if !ok || !p.next(':') || !member(name) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// once marks member bit b seen, refusing a repeat.
func once(seen *uint32, b uint32) bool {
	if *seen&b != 0 {
		return false
	}
	*seen |= b
	return true
}

func (p *fastParser) eventMember(w *eventWire, name string) bool {
	var dst *string
	var bit uint32
	switch name {
	case "id":
		w.ID = new(string)
		dst, bit = w.ID, 1<<0
	case "stream":
		dst, bit = &w.Stream, 1<<1
	case "type":
		dst, bit = &w.Type, 1<<2
	case "action":
		dst, bit = &w.Action, 1<<3
	case "outcome":
		dst, bit = &w.Outcome, 1<<4
	case "outcome_desc":
		dst, bit = &w.OutcomeDesc, 1<<5
	case "patient":
		dst, bit = &w.Patient, 1<<6
	case "purpose":
		dst, bit = &w.Purpose, 1<<7
	case "time":
		if !once(&p.seen, 1<<8) {
			return false
		}
		t, ok := p.str()
		w.Time = &t
		return ok
	case "actor":
		if !once(&p.seen, 1<<9) {
			return false
		}
		w.Actor = new(Actor)
		return p.actor(w.Actor)
	case "source":
		if !once(&p.seen, 1<<10) {
			return false
		}
		w.Source = new(Source)
		return p.source(w.Source)
	case "entities":
		if !once(&p.seen, 1<<11) {
			return false
		}
		return p.entities(&w.Entities)
	case "details":
		if !once(&p.seen, 1<<12) {
			return false
		}
		return p.details(&w.Details)
	case "subtypes":
		if !once(&p.seen, 1<<13) {
			return false
		}
		return p.strings(&w.Subtypes)
	default:
		return false
	}
	if !once(&p.seen, bit) {
		return false
	}
	v, ok := p.str()
	*dst = v
	return ok
}

// fields reads an object of string members named in names into dsts.
func (p *fastParser) fields(names []string, dsts []*string) bool {
	var seen uint32
	return p.object(func(name string) bool {
		for i, n := range names {
			if n == name {
				if !once(&seen, 1<<i) {
					return false
				}
				v, ok := p.str()
				*dsts[i] = v
				return ok
			}
		}
		return false
	})
}

var (
	actorNames  = []string{"id", "name", "role", "address", "user_agent"}
	sourceNames = []string{"id", "site", "type"}
	entityNames = []string{"type", "id", "role", "name"}
)

func (p *fastParser) actor(a *Actor) bool {
	return p.fields(actorNames, []*string{&a.ID, &a.Name, &a.Role, &a.Address, &a.UserAgent})
}

func (p *fastParser) source(s *Source) bool {
	return p.fields(sourceNames, []*string{&s.ID, &s.Site, &s.Type})
}

func (p *fastParser) entities(dst *[]Entity) bool {
	if !p.next('[') {
		return false
	}
	ents := []Entity{}
	if !p.next(']') {
		for {
			var e Entity
			if !p.fields(entityNames, []*string{&e.Type, &e.ID, &e.Role, &e.Name}) {
				return false
			}
			ents = append(ents, e)
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*dst = ents
	return true
}

// strings reads an array of strings.
func (p *fastParser) strings(dst *[]string) bool {
	if !p.next('[') {
		return false
	}
	out := []string{}
	if !p.next(']') {
		for {
			v, ok := p.str()
			if !ok {
				return false
			}
			out = append(out, v)
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*dst = out
	return true
}

// details takes the raw bytes of an object value. Whether they are valid
// JSON is left to Validate, which every caller runs next (a brace count over
// invalid JSON may end in the wrong place, but then the value is invalid and
// the event refused).
func (p *fastParser) details(dst *json.RawMessage) bool {
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return false
	}
	start, depth := p.i, 0
	for ; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case '"':
			for p.i++; p.i < len(p.s) && p.s[p.i] != '"'; p.i++ {
				if p.s[p.i] == '\\' {
					p.i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.i++
				*dst = []byte(p.s[start:p.i])
				return true
			}
		}
	}
	return false
}
