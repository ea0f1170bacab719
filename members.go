package trail

import (
	"encoding/json"
	"errors"
	"fmt"
)

// encoding/json matches member names case-insensitively and takes the last
// of repeated members, so {"Stream": …} or a second "stream" would slip
// through. checkMembers walks the (already valid) JSON and holds every
// object of the schema to its exact member names, each at most once.

type memberSet map[string]bool

var (
	eventMembers = memberSet{"id": true, "stream": true, "time": true, "type": true, "action": true,
		"outcome": true, "outcome_desc": true, "actor": true, "patient": true, "entities": true,
		"source": true, "purpose": true, "details": true}
	actorMembers  = memberSet{"id": true, "name": true, "role": true, "address": true, "user_agent": true}
	sourceMembers = memberSet{"id": true, "site": true, "type": true}
	entityMembers = memberSet{"type": true, "id": true, "role": true, "name": true}
)

var errMalformed = errors.New("malformed JSON")

type memberScanner struct {
	b   []byte
	pos int
}

// checkMembers reports the first member of data, the JSON of an event, that
// is not in the schema, with its path.
func checkMembers(data []byte) error {
	s := &memberScanner{b: data}
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
	if s.peek() == 'n' {
		return s.skip()
	}
	if s.peek() != '{' {
		return s.skip() // a type error, reported by the decoder
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
		switch {
		case path == "" && serverFields[name]:
			return invalid(name, "is assigned by the server; do not send it")
		case !allowed[name]:
			return invalid(field, "unknown field (names are case-sensitive; check the spelling against the v1 event schema)")
		case seen[name]:
			return invalid(field, "appears more than once")
		}
		seen[name] = true
		if s.peek() != ':' {
			return errMalformed
		}
		s.pos++
		if err := s.member(path, name); err != nil {
			return err
		}
	}
}

func (s *memberScanner) member(path, name string) error {
	if path != "" {
		return s.skip()
	}
	switch name {
	case "actor":
		return s.object("actor", actorMembers)
	case "source":
		return s.object("source", sourceMembers)
	case "entities":
		if s.peek() != '[' {
			return s.skip()
		}
		s.pos++
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
			if err := s.object(fmt.Sprintf("entities[%d]", i), entityMembers); err != nil {
				return err
			}
		}
	}
	return s.skip()
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
