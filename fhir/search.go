package fhir

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SearchParams are the AuditEvent search parameters Trail answers (IHE
// ITI-81), with their R4 types, as the CapabilityStatement lists them.
var SearchParams = []struct{ Name, Type, Doc string }{
	{"_id", "token", "the event id"},
	{"date", "date", "AuditEvent.recorded (the event's time), prefixes eq ne gt lt ge le, at the precision given"},
	{"patient", "reference", "a Patient entity: Patient/<id>, or :identifier=system|value"},
	{"patient.identifier", "token", "the patient entity's identifier, system|value (ITI-81)"},
	{"agent", "reference", "an agent's who: a reference, or :identifier=system|value"},
	{"entity", "reference", "an entity's what: a reference, or :identifier=system|value"},
	{"entity-identifier", "token", "an entity's what.identifier, system|value (ITI-81)"},
	{"source", "reference", "source.observer: a reference, or :identifier=system|value"},
	{"address", "string", "an agent's network address (starts with, any case; :exact)"},
	{"entity-type", "token", "an entity's type"},
	{"entity-role", "token", "an entity's role"},
	{"outcome", "token", "the outcome (0 4 8 12)"},
	{"type", "token", "the type, system|code"},
	{"subtype", "token", "a subtype, system|code"},
	{"action", "token", "the action (C R U D E)"},
	{"agent-name", "string", "an agent's name (starts with, any case; :exact)"},
	{"agent-role", "token", "an agent's role"},
	{"altid", "token", "an agent's altId"},
	{"entity-name", "string", "an entity's name (starts with, any case; :exact)"},
	{"site", "token", "source.site"},
}

// Result parameters and Trail's own.
const (
	ParamCount  = "_count"
	ParamSort   = "_sort"
	ParamFormat = "_format"
	// ParamCursor carries the position of the next page in next links.
	ParamCursor = "_cursor"
	// MaxCount is the most entries a page has; DefaultCount when _count is
	// not given.
	MaxCount     = 1000
	DefaultCount = 100
)

// Search is a parsed AuditEvent search.
type Search struct {
	Count int  // entries per page
	Desc  bool // _sort=-date (the default)
	// IDs, when set, are the only ids that can match (_id).
	IDs []string
	// Patient, Action and Outcome are single values the engine's indexes
	// can filter on ("" when the search has none): the event's patient,
	// action and outcome. Match still checks every parameter.
	Patient, Action, Outcome string
	// PatientNamed is the patient the search names, for the read record.
	PatientNamed string
	// Cursor is the index after which this page starts in log order (nil:
	// the start).
	Cursor *uint64
	// SortCursor, when set, is where this page starts in date order: after
	// the event of that time (Unix nanoseconds) and index.
	SortCursor *SortKey
	// Ignored lists parameters Trail does not know.
	Ignored []string

	preds []func(*AuditEvent) bool
}

// known is every parameter name ParseSearch takes, modifiers apart.
func known(name string) bool {
	switch name {
	case ParamCount, ParamSort, ParamFormat, ParamCursor, "purpose", "reason":
		return true
	}
	for _, p := range SearchParams {
		if p.Name == name {
			return true
		}
	}
	return false
}

// ParseSearch reads a search from query parameters. A parameter given
// twice must match both times (AND); values separated by commas are
// alternatives (OR). Unknown parameters are listed in Ignored; an unknown
// modifier or a bad value is an error, with the issues.
func ParseSearch(v url.Values) (*Search, []Issue) {
	s := &Search{Count: DefaultCount, Desc: true}
	var issues []Issue
	bad := func(name, format string, args ...any) {
		issues = append(issues, Issue{Severity: SeverityError, Code: CodeValue, Diagnostics: fmt.Sprintf(format, args...), Expression: []string{name}})
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, full := range names {
		name, mod, _ := strings.Cut(full, ":")
		if !known(name) {
			s.Ignored = append(s.Ignored, full)
			continue
		}
		for _, val := range v[full] {
			if err := s.param(name, mod, val); err != "" {
				bad(full, "%s=%q: %s", full, val, err)
			}
		}
	}
	return s, issues
}

// param adds one parameter's value; it returns why it is wrong, or "".
func (s *Search) param(name, mod, val string) string {
	if mod != "" && !(mod == "identifier" && slices.Contains([]string{"patient", "agent", "entity", "source"}, name)) &&
		!(mod == "exact" && (name == "address" || name == "agent-name" || name == "entity-name")) {
		return "modifier :" + mod + " is not supported here"
	}
	alts := splitOr(val)
	if len(alts) == 0 && name != ParamFormat {
		return "empty value"
	}
	switch name {
	case ParamCount:
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return "must be a whole number from 1"
		}
		s.Count = min(n, MaxCount)
	case ParamSort:
		switch val {
		case "date":
			s.Desc = false
		case "-date":
			s.Desc = true
		default:
			return "sorting is by date or -date"
		}
	case ParamCursor:
		if k, ok := parseSortKey(val); ok {
			s.SortCursor = &k
			return ""
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return "is not a cursor from a next link"
		}
		s.Cursor = &n
	case ParamFormat, "purpose", "reason":
	case "_id":
		if s.IDs != nil {
			alts = intersect(s.IDs, alts)
		}
		s.IDs = append([]string{}, alts...)
	case "date":
		return s.date(alts)
	default:
		return s.match(name, mod, alts)
	}
	return ""
}

// match adds the predicate of a reference, token or string parameter.
func (s *Search) match(name, mod string, alts []string) string {
	var pred func(*AuditEvent, string) bool
	switch {
	case name == "address" || name == "agent-name" || name == "entity-name":
		pred = func(ae *AuditEvent, v string) bool { return matchString(stringsOf(ae, name), v, mod == "exact") }
	case mod == "identifier" || name == "patient.identifier" || name == "entity-identifier":
		pred = identifierPred(name)
	case name == "patient" || name == "agent" || name == "entity" || name == "source":
		pred = referencePred(name)
	default:
		pred = tokenPred(name)
	}
	s.preds = append(s.preds, func(ae *AuditEvent) bool {
		for _, v := range alts {
			if pred(ae, v) {
				return true
			}
		}
		return false
	})
	if len(alts) == 1 {
		s.indexed(name, mod, alts[0])
	}
	return ""
}

// indexed notes a single value the engine's index can filter on.
func (s *Search) indexed(name, mod, v string) {
	switch {
	case name == "patient" && mod == "":
		id := patientRefID(v)
		if id == "" && !strings.Contains(v, "/") {
			id = v
		}
		s.PatientNamed = id
		if fhirID(id) && s.Patient == "" {
			s.Patient = id
		}
	case name == "patient" || name == "patient.identifier":
		// Named as the event names it: HL7 CX for an OID system, as the
		// decoder and ATNA write it, so the patient finds this read.
		sys, val, _ := cutToken(v)
		s.PatientNamed = val
		if oid, ok := strings.CutPrefix(sys, "urn:oid:"); ok && oid != "" && val != "" {
			s.PatientNamed = val + "^^^&" + oid + "&ISO"
		}
	case name == "action":
		if sys, code, _ := cutToken(v); sys == "" || sys == SystemAction {
			s.Action = code
		}
	case name == "outcome":
		if sys, code, _ := cutToken(v); sys == "" || sys == SystemOutcome {
			s.Outcome = outcomeCodes[code]
		}
	}
}

// SortKey is an event's place in date order: its time, then its index.
type SortKey struct {
	Time  int64 // Unix nanoseconds
	Index uint64
}

// Compare orders keys by time, then index.
func (k SortKey) Compare(o SortKey) int {
	switch {
	case k.Time < o.Time:
		return -1
	case k.Time > o.Time:
		return 1
	case k.Index < o.Index:
		return -1
	case k.Index > o.Index:
		return 1
	}
	return 0
}

// String is the key as a _cursor value: t<time>.<index>.
func (k SortKey) String() string {
	return "t" + strconv.FormatInt(k.Time, 10) + "." + strconv.FormatUint(k.Index, 10)
}

func parseSortKey(v string) (SortKey, bool) {
	rest, ok := strings.CutPrefix(v, "t")
	if !ok {
		return SortKey{}, false
	}
	ts, is, ok := strings.Cut(rest, ".")
	t, err1 := strconv.ParseInt(ts, 10, 64)
	i, err2 := strconv.ParseUint(is, 10, 64)
	return SortKey{t, i}, ok && err1 == nil && err2 == nil
}

// Match reports whether an AuditEvent matches every parameter.
func (s *Search) Match(ae *AuditEvent) bool {
	if s.IDs != nil && !slices.Contains(s.IDs, ae.ID) {
		return false
	}
	for _, p := range s.preds {
		if !p(ae) {
			return false
		}
	}
	return true
}

// splitOr splits a value at unescaped commas ("\," is a comma).
func splitOr(v string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && (v[i+1] == ',' || v[i+1] == '|' || v[i+1] == '\\'):
			b.WriteByte(v[i+1])
			i++
		case v[i] == ',':
			if b.Len() > 0 {
				out = append(out, b.String())
			}
			b.Reset()
		default:
			b.WriteByte(v[i])
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

func intersect(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// cutToken splits a token "system|code": has says whether a system part
// was given ("|code" is a code without a system).
func cutToken(v string) (system, code string, has bool) {
	if sys, code, ok := strings.Cut(v, "|"); ok {
		return sys, code, true
	}
	return "", v, false
}

// matchCoding reports whether a coding matches a token: "code" any system,
// "system|code", "|code" no system, "system|" any code of the system.
func matchCoding(c Coding, tok string) bool {
	sys, code, has := cutToken(tok)
	if has && sys != c.System {
		return false
	}
	return code == "" || code == c.Code
}

func matchCode(system, value, tok string) bool {
	return matchCoding(Coding{System: system, Code: value}, tok)
}

// tokenPred is the predicate of a token parameter on a coded element.
func tokenPred(name string) func(*AuditEvent, string) bool {
	return func(ae *AuditEvent, tok string) bool {
		switch name {
		case "type":
			return ae.Type != nil && matchCoding(*ae.Type, tok)
		case "subtype":
			return slices.ContainsFunc(ae.Subtype, func(c Coding) bool { return matchCoding(c, tok) })
		case "action":
			return ae.Action != "" && matchCode(SystemAction, ae.Action, tok)
		case "outcome":
			o := ae.Outcome
			if o == "" {
				o = "0" // Trail stores an event without an outcome as a success
			}
			return matchCode(SystemOutcome, o, tok)
		case "agent-role":
			return slices.ContainsFunc(ae.Agent, func(ag Agent) bool {
				return slices.ContainsFunc(ag.Role, func(cc CodeableConcept) bool {
					return slices.ContainsFunc(cc.Coding, func(c Coding) bool { return matchCoding(c, tok) })
				})
			})
		case "altid":
			return slices.ContainsFunc(ae.Agent, func(ag Agent) bool { return ag.AltID != "" && matchCode("", ag.AltID, tok) })
		case "site":
			return ae.Source != nil && ae.Source.Site != "" && matchCode("", ae.Source.Site, tok)
		case "entity-type", "entity-role":
			return slices.ContainsFunc(ae.Entity, func(e Entity) bool {
				c := e.Type
				if name == "entity-role" {
					c = e.Role
				}
				return c != nil && matchCoding(*c, tok)
			})
		}
		return false
	}
}

// matchIdentifier reports whether an identifier matches a token.
func matchIdentifier(id *Identifier, tok string) bool {
	if id == nil || id.Value == "" {
		return false
	}
	return matchCode(id.System, id.Value, tok)
}

// identifierPred is the predicate of an identifier search (x:identifier,
// patient.identifier, entity-identifier).
func identifierPred(name string) func(*AuditEvent, string) bool {
	return func(ae *AuditEvent, tok string) bool {
		for _, r := range references(ae, name) {
			if r != nil && matchIdentifier(r.Identifier, tok) {
				return true
			}
		}
		return false
	}
}

// referencePred is the predicate of a reference parameter: "Type/id", an
// absolute URL ending so, or an id alone (for patient, Patient/<id>; for
// the others, any type).
func referencePred(name string) func(*AuditEvent, string) bool {
	return func(ae *AuditEvent, v string) bool {
		want := relativeRef(v)
		if name == "patient" && !strings.Contains(want, "/") {
			want = "Patient/" + want
		}
		for _, r := range references(ae, name) {
			if r == nil || r.Reference == "" {
				continue
			}
			got := relativeRef(r.Reference)
			if got == want || !strings.Contains(want, "/") && strings.HasSuffix(got, "/"+want) {
				return true
			}
		}
		return false
	}
}

// relativeRef is a reference as Type/id, without a base URL or history.
func relativeRef(ref string) string {
	ref, _, _ = strings.Cut(ref, "/_history/")
	parts := strings.Split(strings.TrimSuffix(ref, "/"), "/")
	if len(parts) >= 2 {
		return parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	return ref
}

// references are the references a parameter looks at.
func references(ae *AuditEvent, name string) []*Reference {
	var rs []*Reference
	switch name {
	case "agent":
		for _, ag := range ae.Agent {
			rs = append(rs, ag.Who)
		}
	case "source":
		if ae.Source != nil {
			rs = append(rs, ae.Source.Observer)
		}
	case "entity", "entity-identifier":
		for _, e := range ae.Entity {
			rs = append(rs, e.What)
		}
	case "patient", "patient.identifier":
		for _, e := range ae.Entity {
			if e.What != nil && (patientRefID(e.What.Reference) != "" || e.Type != nil && e.Role != nil && isPatientCoding(*e.Type, *e.Role)) {
				rs = append(rs, e.What)
			}
		}
	}
	return rs
}

// stringsOf are the values a string parameter looks at: agents' network
// addresses (address) or names (agent-name), entities' names
// (entity-name).
func stringsOf(ae *AuditEvent, name string) []string {
	var out []string
	switch name {
	case "address":
		for _, ag := range ae.Agent {
			if ag.Network != nil {
				out = append(out, ag.Network.Address)
			}
		}
	case "agent-name":
		for _, ag := range ae.Agent {
			out = append(out, ag.Name)
		}
	case "entity-name":
		for _, e := range ae.Entity {
			out = append(out, e.Name)
		}
	}
	return out
}

// matchString is R4 string search: a value starting with v in any case, or
// equal to it with :exact.
func matchString(values []string, v string, exact bool) bool {
	for _, a := range values {
		if a == "" {
			continue
		}
		if exact && a == v || !exact && len(a) >= len(v) && strings.EqualFold(a[:len(v)], v) {
			return true
		}
	}
	return false
}

// date adds a date parameter: each alternative is a prefix and a dateTime
// of some precision, which stands for the range it covers.
func (s *Search) date(alts []string) string {
	type cond struct {
		prefix string
		lo, hi time.Time
	}
	var cs []cond
	for _, a := range alts {
		prefix := "eq"
		if len(a) > 2 && a[0] >= 'a' && a[0] <= 'z' {
			prefix, a = a[:2], a[2:]
		}
		switch prefix {
		case "eq", "ne", "gt", "lt", "ge", "le":
		default:
			return "prefix " + prefix + " is not supported (eq ne gt lt ge le)"
		}
		lo, hi, err := dateRange(a)
		if err != "" {
			return err
		}
		cs = append(cs, cond{prefix, lo, hi})
	}
	s.preds = append(s.preds, func(ae *AuditEvent) bool {
		t, err := time.Parse(time.RFC3339Nano, ae.Recorded)
		if err != nil {
			return false
		}
		for _, c := range cs {
			in := !t.Before(c.lo) && t.Before(c.hi)
			switch {
			case c.prefix == "eq" && in, c.prefix == "ne" && !in,
				c.prefix == "gt" && !t.Before(c.hi), c.prefix == "lt" && t.Before(c.lo),
				c.prefix == "ge" && !t.Before(c.lo), c.prefix == "le" && t.Before(c.hi):
				return true
			}
		}
		return false
	})
	return ""
}

// dateRange is the range [lo, hi) a dateTime of some precision covers:
// 2026, 2026-01, 2026-01-05, 2026-01-05T10:00Z (minutes), seconds, or
// fractions. A value without a time zone is read in UTC.
func dateRange(v string) (lo, hi time.Time, err string) {
	layouts := []struct {
		layout string
		step   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04", func(t time.Time) time.Time { return t.Add(time.Minute) }},
	}
	for _, l := range layouts {
		if t, e := time.Parse(l.layout, v); e == nil {
			return t, l.step(t), ""
		}
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, e := time.Parse(l, v); e == nil {
			step := time.Second
			if _, frac, ok := strings.Cut(v, "."); ok {
				digits := len(frac) - len(strings.TrimLeft(frac, "0123456789"))
				step = time.Duration(1)
				for i := digits; i < 9; i++ {
					step *= 10
				}
			}
			return t, t.Add(step), ""
		}
	}
	return lo, hi, "is not a date such as 2026-01-05, 2026-01-05T10:00:00Z or 2026-01"
}
