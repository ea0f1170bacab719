package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// encoding/json matches member names case-insensitively, takes the last of
// repeated members and reports only the first value of a wrong type, so
// {"Stream": …} or a second "stream" would slip through and an event with
// several problems would be refused for one at a time. checkMembers walks
// the (already valid) JSON and holds every object of the schema to its exact
// member names, each at most once, and each value to its type.

type memberSet map[string]bool

var (
	eventMembers = memberSet{"id": true, "stream": true, "time": true, "type": true, "action": true,
		"subtypes": true, "outcome": true, "outcome_desc": true, "actor": true, "patient": true, "entities": true,
		"source": true, "purpose": true, "details": true}
	actorMembers  = memberSet{"id": true, "name": true, "role": true, "address": true, "user_agent": true}
	sourceMembers = memberSet{"id": true, "site": true, "type": true}
	entityMembers = memberSet{"type": true, "id": true, "role": true, "name": true}
)

var errMalformed = errors.New("malformed JSON")

type memberScanner struct {
	b   []byte
	pos int
	ps  *problems
}

// checkMembers adds to ps every member of data, the (valid) JSON of an
// event, that is not in the schema, appears twice, or whose value is not of
// the schema's type, each with its path.
func checkMembers(data []byte, ps *problems) error {
	s := &memberScanner{b: data, ps: ps}
	return s.object("", eventMembers)
}

func (s *memberScanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *memberScanner) peek() byte {
	s.ws()
	if s.pos >= len(s.b) {
		return 0
	}
	return s.b[s.pos]
}

// object checks the members of the object at pos against allowed. A null
// stands for an absent object.
func (s *memberScanner) object(path string, allowed memberSet) error {
	if s.peek() != '{' {
		return s.skip() // null, or a type error the caller reports
	}
	s.pos++
	seen := map[string]bool{}
	for {
		c := s.peek()
		if c == '}' {
			s.pos++
			return nil
		}
		if c == ',' {
			s.pos++
			continue
		}
		name, err := s.name()
		if err != nil {
			return err
		}
		field := name
		if name == "" {
			field = `""`
		}
		if path != "" {
			field = path + "." + field
		}
		known := false
		switch {
		case path == "" && serverFields[name]:
			s.ps.add(invalid(name, "is assigned by the server; do not send it"))
		case !allowed[name]:
			s.ps.add(invalid(field, "unknown field (names are case-sensitive; check the spelling against the v1 event schema)"))
		case seen[name]:
			s.ps.add(invalid(field, "appears more than once"))
		default:
			known = true
		}
		seen[name] = true
		if s.peek() != ':' {
			return errMalformed
		}
		s.pos++
		if !known {
			err = s.skip()
		} else {
			err = s.member(path, name, field)
		}
		if err != nil {
			return err
		}
	}
}

// member checks the value of a known member: a string, or for actor, source
// and entities an object or an array of objects; null stands for absent.
// details may be anything here (Validate says it must be an object).
func (s *memberScanner) member(path, name, field string) error {
	c := s.peek()
	if c == 'n' || path == "" && name == "details" {
		return s.skip()
	}
	want := "string"
	if path == "" {
		switch name {
		case "actor", "source":
			want = "object"
		case "entities", "subtypes":
			want = "array"
		}
	}
	if got := jsonType(c); got != want {
		s.ps.add(invalid(field, "must be a JSON %s, not %s", want, got))
		return s.skip()
	}
	switch {
	case want == "string":
		return s.skip()
	case name == "actor":
		return s.object("actor", actorMembers)
	case name == "source":
		return s.object("source", sourceMembers)
	case name == "subtypes":
		return s.items(name, "string", func(string) error { return s.skip() })
	}
	return s.items(name, "object", func(item string) error { return s.object(item, entityMembers) })
}

// items checks that every item of the array at pos is a JSON value of type
// want, and reads each with read, given the item's path (name[i]).
func (s *memberScanner) items(name, want string, read func(item string) error) error {
	s.pos++ // [
	for i := 0; ; i++ {
		switch s.peek() {
		case ']':
			s.pos++
			return nil
		case ',':
			s.pos++
		}
		if s.peek() == ']' {
			continue
		}
		item := fmt.Sprintf("%s[%d]", name, i)
		if got := jsonType(s.peek()); got != want {
			s.ps.add(invalid(item, "must be a JSON %s, not %s", want, got))
		}
		if err := read(item); err != nil {
			return err
		}
	}
}

// jsonType names the type of the JSON value that starts with c.
func jsonType(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// name reads a member name, unescaping it like the decoder does.
func (s *memberScanner) name() (string, error) {
	start := s.pos
	if err := s.skipString(); err != nil {
		return "", err
	}
	raw := s.b[start:s.pos]
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", errMalformed
	}
	return name, nil
}

func (s *memberScanner) skipString() error {
	if s.peek() != '"' {
		return errMalformed
	}
	for s.pos++; s.pos < len(s.b); s.pos++ {
		switch s.b[s.pos] {
		case '\\':
			s.pos++
		case '"':
			s.pos++
			return nil
		}
	}
	return errMalformed
}

// skip passes over one value.
func (s *memberScanner) skip() error {
	switch s.peek() {
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 0
		for s.pos < len(s.b) {
			switch s.b[s.pos] {
			case '"':
				if err := s.skipString(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.pos++
					return nil
				}
			}
			s.pos++
		}
		return errMalformed
	}
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return nil
		}
		s.pos++
	}
	return nil
}
