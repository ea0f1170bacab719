package atna

import (
	"encoding/xml"
	"strings"
	"unicode/utf8"
)

// parseFast decodes the common shape of a message without encoding/xml,
// into the very AuditMessage encoding/xml would make of it. Parse calls it
// after its own checks (size, byte order mark, declared encoding); it
// reports false for anything outside that shape, and Parse then decodes
// with encoding/xml, which gives the precise error or the same message
// (FuzzParseFastXML checks that whatever the fast path accepts, the full
// decoder decodes to an equal message).
//
// The shape: an optional XML declaration at the very start (version 1.0,
// encoding UTF-8, standalone); white space and comments around the root;
// elements with ASCII names, with at most one namespace prefix, declared
// (with a namespace name holding a colon, as any URI does); attributes in
// ' or ", each local name at most once per element; text and values of
// valid UTF-8 and XML characters, with the five predefined entities and
// character references to XML characters; comments anywhere. It falls back
// on anything else: CDATA sections, DOCTYPE and every other <! declaration,
// processing instructions but the declaration, invalid UTF-8 or characters,
// other references, names it does not read as encoding/xml does (leading,
// trailing or several colons, non-ASCII letters, the xml and xmlns
// prefixes), mismatched or unclosed tags, text outside the root, nesting
// deeper than fastMaxDepth.
//
// All strings written as sent share one copy of data, so a decoded message
// costs a handful of allocations instead of several per attribute.
func parseFast(data []byte) (*AuditMessage, bool) {
	p := fastParser{s: string(data)}
	p.attrs = p.attrBuf[:0]
	if !p.declaration() || !p.misc() {
		return nil, false
	}
	if p.i >= len(p.s) || p.s[p.i] != '<' {
		return nil, false
	}
	name, empty, ok := p.startTag()
	if !ok || localName(name) != "AuditMessage" {
		return nil, false
	}
	m := new(AuditMessage)
	if !p.element(name, empty, kindRoot, m) || !p.misc() || p.i != len(p.s) {
		return nil, false
	}
	return m, true
}

// fastMaxDepth bounds the nesting of elements parseFast reads; deeper
// messages take the full decoder.
const fastMaxDepth = 64

// fastMaxAttrs bounds the attributes of one element parseFast reads.
const fastMaxAttrs = 32

type fastParser struct {
	s       string
	i       int
	depth   int
	attrs   []fastAttr // of the start tag read last
	attrBuf [16]fastAttr
	ns      []nsBinding // namespace declarations in scope, innermost last
	buf     []byte      // scratch for decoding references
}

type fastAttr struct {
	name  string // as written, with its prefix
	value string // decoded
}

type nsBinding struct {
	prefix string // "" for the default namespace
	uri    string
}

// fastKind is what an element decodes into.
type fastKind uint8

const (
	kindRoot        fastKind = iota // *AuditMessage
	kindEvent                       // *EventIdentification
	kindParticipant                 // *ActiveParticipant
	kindMedia                       // *Media
	kindSource                      // *AuditSource
	kindObject                      // *ParticipantObject
	kindCode                        // *codeWire
	kindDetail                      // *Detail
	kindText                        // *string: its text
	kindUnknown                     // *[]xml.Name: its name
	kindSkip                        // nil: nothing
)

// declaration reads an XML declaration at the very start, if there is one,
// of the one form: version 1.0, then optionally encoding UTF-8 (any case)
// and standalone yes or no.
func (p *fastParser) declaration() bool {
	if !strings.HasPrefix(p.s, "<?xml") {
		return true
	}
	end := strings.Index(p.s, "?>")
	if end < 0 {
		return false
	}
	d := p.s[len("<?xml"):end]
	v, d, ok := pseudo(d, "version")
	if !ok || v != "1.0" {
		return false
	}
	if v, rest, ok := pseudo(d, "encoding"); ok {
		if !strings.EqualFold(v, "utf-8") {
			return false
		}
		d = rest
	}
	if v, rest, ok := pseudo(d, "standalone"); ok {
		if v != "yes" && v != "no" {
			return false
		}
		d = rest
	}
	if strings.Trim(d, " \t\r\n") != "" {
		return false
	}
	p.i = end + len("?>")
	return true
}

// pseudo reads white space and name="value" (or 'value') from the start of
// d, and returns the value and what follows.
func pseudo(d, name string) (value, rest string, ok bool) {
	t := strings.TrimLeft(d, " \t\r\n")
	if len(t) == len(d) || !strings.HasPrefix(t, name) || !strings.HasPrefix(t[len(name):], "=") {
		return "", d, false
	}
	t = t[len(name)+1:]
	if t == "" || t[0] != '"' && t[0] != '\'' {
		return "", d, false
	}
	value, rest, ok = strings.Cut(t[1:], t[:1])
	if !ok {
		return "", d, false
	}
	return value, rest, true
}

// misc skips white space and comments outside the root.
func (p *fastParser) misc() bool {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		case '<':
			if !strings.HasPrefix(p.s[p.i:], "<!--") {
				return true
			}
			if !p.comment() {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// comment skips a comment at p.i, <!-- to the first --, which must be
// followed by >.
func (p *fastParser) comment() bool {
	start := p.i + len("<!--")
	j := strings.Index(p.s[start:], "--")
	if j < 0 {
		return false
	}
	end := start + j + len("--")
	if end >= len(p.s) || p.s[end] != '>' {
		return false
	}
	p.i = end + 1
	return true
}

func (p *fastParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// name reads a name of ASCII letters, digits and _ . - with at most one
// colon inside it, not first or last. It fails on a byte past ASCII, where
// encoding/xml would go on reading the name.
func (p *fastParser) name() (string, bool) {
	start := p.i
	if p.i >= len(p.s) {
		return "", false
	}
	if c := p.s[p.i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_') {
		return "", false
	}
	p.i++
	colon := -1
	for p.i < len(p.s) {
		c := p.s[p.i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' {
			p.i++
			continue
		}
		if c == ':' {
			if colon >= 0 {
				return "", false
			}
			colon = p.i
			p.i++
			continue
		}
		if c >= utf8.RuneSelf {
			return "", false
		}
		break
	}
	if colon == p.i-1 {
		return "", false
	}
	return p.s[start:p.i], true
}

// localName is name without its prefix.
func localName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// startTag reads a start tag at p.i (at its <): the element's name, its
// attributes into p.attrs, and whether it is empty (/>).
func (p *fastParser) startTag() (name string, empty, ok bool) {
	p.i++
	if name, ok = p.name(); !ok {
		return "", false, false
	}
	p.attrs = p.attrs[:0]
	for {
		p.skipSpace()
		if p.i >= len(p.s) {
			return "", false, false
		}
		switch p.s[p.i] {
		case '/':
			if p.i+1 >= len(p.s) || p.s[p.i+1] != '>' {
				return "", false, false
			}
			p.i += 2
			return name, true, p.distinct()
		case '>':
			p.i++
			return name, false, p.distinct()
		}
		an, ok := p.name()
		if !ok {
			return "", false, false
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '=' {
			return "", false, false
		}
		p.i++
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '"' && p.s[p.i] != '\'' {
			return "", false, false
		}
		q := p.s[p.i]
		p.i++
		start := p.i
		raw, ok := p.scan(q)
		if !ok || len(p.attrs) == fastMaxAttrs {
			return "", false, false
		}
		v := p.s[start:p.i]
		if !raw {
			v = p.decode(v)
		}
		p.i++ // the closing quote
		p.attrs = append(p.attrs, fastAttr{name: an, value: v})
	}
}

// distinct reports whether the local names of p.attrs differ (encoding/xml
// would let the last of the same name win; the fast path leaves that to
// it).
func (p *fastParser) distinct() bool {
	for i := 1; i < len(p.attrs); i++ {
		li := localName(p.attrs[i].name)
		for j := 0; j < i; j++ {
			if localName(p.attrs[j].name) == li {
				return false
			}
		}
	}
	return true
}

// scan checks the text from p.i up to the byte stop ('<' for text, the
// quote for an attribute value) and leaves p.i at it. It reports raw when
// the text is as sent, without references or carriage returns to decode.
// It fails where encoding/xml would fail and on references it does not
// decode itself.
func (p *fastParser) scan(stop byte) (raw, ok bool) {
	s := p.s
	raw = true
	for i := p.i; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
				return false, false
			}
			i += n
			continue
		}
		switch {
		case c == stop:
			p.i = i
			return raw, true
		case c == '<':
			return false, false // in an attribute value
		case c == '&':
			_, n := reference(s[i:])
			if n == 0 {
				return false, false
			}
			i += n
			raw = false
			continue
		case c == '\r':
			raw = false
		case c == '>':
			// ]]> is not allowed in text (but is in attribute values).
			if stop == '<' && i >= 2 && s[i-1] == ']' && s[i-2] == ']' {
				return false, false
			}
		case c < 0x20 && c != '\t' && c != '\n':
			return false, false
		}
		i++
	}
	return false, false
}

// reference decodes the reference at the start of s (at its &): one of the
// five predefined entities, or a character reference to an XML character.
// It returns the length read, 0 for any other.
func reference(s string) (rune, int) {
	switch {
	case strings.HasPrefix(s, "&lt;"):
		return '<', 4
	case strings.HasPrefix(s, "&gt;"):
		return '>', 4
	case strings.HasPrefix(s, "&amp;"):
		return '&', 5
	case strings.HasPrefix(s, "&apos;"):
		return '\'', 6
	case strings.HasPrefix(s, "&quot;"):
		return '"', 6
	case !strings.HasPrefix(s, "&#"):
		return 0, 0
	}
	i, base := 2, rune(10)
	if i < len(s) && s[i] == 'x' {
		i, base = 3, 16
	}
	start := i
	var r rune
	for ; i < len(s) && i-start < 7; i++ {
		c := s[i]
		var d rune
		switch {
		case '0' <= c && c <= '9':
			d = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = rune(c-'A') + 10
		default:
			d = -1
		}
		if d < 0 {
			break
		}
		r = r*base + d
	}
	if i == start || i >= len(s) || s[i] != ';' || !isXMLChar(r) {
		return 0, 0
	}
	return r, i + 1
}

// isXMLChar reports whether r is a character XML allows (encoding/xml's
// isInCharacterRange); surrogates are not.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// decode decodes text that scan accepted: references, and carriage returns
// (alone or before a line feed) as line feeds, as encoding/xml does.
func (p *fastParser) decode(t string) string {
	b := p.buf[:0]
	for i := 0; i < len(t); {
		switch c := t[i]; c {
		case '&':
			r, n := reference(t[i:])
			b = utf8.AppendRune(b, r)
			i += n
		case '\r':
			b = append(b, '\n')
			i++
			if i < len(t) && t[i] == '\n' {
				i++
			}
		default:
			b = append(b, c)
			i++
		}
	}
	p.buf = b
	return string(b)
}

// element reads an element whose start tag startTag just read, up to and
// including its end tag, into dst, which k says the type of.
func (p *fastParser) element(name string, empty bool, k fastKind, dst any) bool {
	mark := len(p.ns)
	if !p.declare() {
		return false
	}
	p.assign(k, dst)
	if k == kindUnknown {
		space, ok := p.space(name)
		if !ok {
			return false
		}
		u := dst.(*[]xml.Name)
		*u = append(*u, xml.Name{Space: space, Local: localName(name)})
		k, dst = kindSkip, nil
	}
	var text string
	if !empty {
		if p.depth++; p.depth > fastMaxDepth {
			return false
		}
		pieces := 0
	Content:
		for {
			start := p.i
			raw, ok := p.scan('<')
			if !ok {
				return false
			}
			if k == kindText && p.i > start {
				piece := p.s[start:p.i]
				if !raw {
					piece = p.decode(piece)
				}
				if pieces == 0 {
					text = piece
				} else {
					text += piece
				}
				pieces++
			}
			rest := p.s[p.i:]
			switch {
			case strings.HasPrefix(rest, "</"):
				p.i += len("</")
				end, ok := p.name()
				if !ok || end != name {
					return false
				}
				p.skipSpace()
				if p.i >= len(p.s) || p.s[p.i] != '>' {
					return false
				}
				p.i++
				break Content
			case strings.HasPrefix(rest, "<!--"):
				if !p.comment() {
					return false
				}
			case strings.HasPrefix(rest, "<!"), strings.HasPrefix(rest, "<?"):
				return false
			default:
				if !p.child(k, dst) {
					return false
				}
			}
		}
		p.depth--
	}
	if k == kindText {
		*dst.(*string) = text
	}
	p.ns = p.ns[:mark]
	return true
}

// declare puts the namespace declarations among p.attrs in scope. It fails
// on declarations of the prefixes xml and xmlns and on namespace names
// without a colon: those (such as xmlns="") are left to encoding/xml, whose
// token decoder, fed by another, translates names twice.
func (p *fastParser) declare() bool {
	for _, a := range p.attrs {
		var prefix string
		switch {
		case a.name == "xmlns":
		case strings.HasPrefix(a.name, "xmlns:"):
			prefix = a.name[len("xmlns:"):]
		default:
			continue
		}
		if prefix == "xml" || prefix == "xmlns" || !strings.Contains(a.value, ":") {
			return false
		}
		p.ns = append(p.ns, nsBinding{prefix, a.value})
	}
	return true
}

// space is the namespace of an element named name: that of its prefix, or
// the default namespace, or none. It fails on undeclared prefixes, the
// prefixes xml and xmlns, and an element named xmlns.
func (p *fastParser) space(name string) (string, bool) {
	prefix, _, found := strings.Cut(name, ":")
	switch {
	case !found && name == "xmlns":
		return "", false
	case !found:
		prefix = ""
	case prefix == "xml" || prefix == "xmlns":
		return "", false
	}
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	return "", !found
}

// assign sets the fields of dst from the attributes of the same local name.
func (p *fastParser) assign(k fastKind, dst any) {
	switch k {
	case kindEvent:
		e := dst.(*EventIdentification)
		for _, a := range p.attrs {
			switch localName(a.name) {
			case "EventActionCode":
				e.ActionCode = a.value
			case "EventDateTime":
				e.DateTime = a.value
			case "EventOutcomeIndicator":
				e.OutcomeIndicator = a.value
			}
		}
	case kindParticipant:
		ap := dst.(*ActiveParticipant)
		for _, a := range p.attrs {
			switch localName(a.name) {
			case "UserID":
				ap.UserID = a.value
			case "AlternativeUserID":
				ap.AlternativeUserID = a.value
			case "UserName":
				ap.UserName = a.value
			case "UserIsRequestor":
				ap.UserIsRequestor = a.value
			case "NetworkAccessPointID":
				ap.NetworkAccessPointID = a.value
			case "NetworkAccessPointTypeCode":
				ap.NetworkAccessPointTypeCode = a.value
			}
		}
	case kindSource:
		src := dst.(*AuditSource)
		for _, a := range p.attrs {
			switch localName(a.name) {
			case "AuditEnterpriseSiteID":
				src.EnterpriseSiteID = a.value
			case "AuditSourceID":
				src.ID = a.value
			}
		}
	case kindObject:
		o := dst.(*ParticipantObject)
		for _, a := range p.attrs {
			switch localName(a.name) {
			case "ParticipantObjectID":
				o.ID = a.value
			case "ParticipantObjectTypeCode":
				o.TypeCode = a.value
			case "ParticipantObjectTypeCodeRole":
				o.TypeCodeRole = a.value
			case "ParticipantObjectDataLifeCycle":
				o.DataLifeCycle = a.value
			case "ParticipantObjectSensitivity":
				o.Sensitivity = a.value
			}
		}
	case kindDetail:
		d := dst.(*Detail)
		for _, a := range p.attrs {
			switch localName(a.name) {
			case "type":
				d.Type = a.value
			case "value":
				d.Value = a.value
			}
		}
	case kindCode:
		w := dst.(*codeWire)
		for _, a := range p.attrs {
			switch localName(a.name) {
			case "csd-code":
				w.CSDCode = a.value
			case "code":
				w.Code = a.value
			case "codeSystemName":
				w.CodeSystemName = a.value
			case "codeSystem":
				w.CodeSystem = a.value
			case "displayName":
				w.DisplayName = a.value
			case "originalText":
				w.OriginalText = a.value
			}
		}
	}
}

// child reads a child element, at its <, of an element of kind k decoding
// into dst: into the field of its local name, or into Unknown, or nowhere.
func (p *fastParser) child(k fastKind, dst any) bool {
	name, empty, ok := p.startTag()
	if !ok {
		return false
	}
	local := localName(name)
	switch k {
	case kindRoot:
		m := dst.(*AuditMessage)
		switch local {
		case "EventIdentification":
			return p.element(name, empty, kindEvent, &m.Event)
		case "ActiveParticipant":
			m.Participants = append(m.Participants, ActiveParticipant{})
			return p.element(name, empty, kindParticipant, &m.Participants[len(m.Participants)-1])
		case "AuditSourceIdentification":
			return p.element(name, empty, kindSource, &m.Source)
		case "ParticipantObjectIdentification":
			m.Objects = append(m.Objects, ParticipantObject{})
			return p.element(name, empty, kindObject, &m.Objects[len(m.Objects)-1])
		}
		return p.element(name, empty, kindUnknown, &m.Unknown)
	case kindEvent:
		e := dst.(*EventIdentification)
		switch local {
		case "EventID":
			return p.code(name, empty, &e.ID)
		case "EventTypeCode":
			e.TypeCodes = append(e.TypeCodes, Code{})
			return p.code(name, empty, &e.TypeCodes[len(e.TypeCodes)-1])
		case "EventOutcomeDescription":
			return p.element(name, empty, kindText, &e.OutcomeDescription)
		case "PurposeOfUse":
			e.PurposesOfUse = append(e.PurposesOfUse, Code{})
			return p.code(name, empty, &e.PurposesOfUse[len(e.PurposesOfUse)-1])
		}
		return p.element(name, empty, kindUnknown, &e.Unknown)
	case kindParticipant:
		ap := dst.(*ActiveParticipant)
		switch local {
		case "RoleIDCode":
			ap.RoleIDCodes = append(ap.RoleIDCodes, Code{})
			return p.code(name, empty, &ap.RoleIDCodes[len(ap.RoleIDCodes)-1])
		case "MediaIdentifier":
			if ap.MediaIdentifier == nil {
				ap.MediaIdentifier = new(Media)
			}
			return p.element(name, empty, kindMedia, ap.MediaIdentifier)
		}
		return p.element(name, empty, kindUnknown, &ap.Unknown)
	case kindMedia:
		if local == "MediaType" {
			return p.code(name, empty, &dst.(*Media).MediaType)
		}
	case kindSource:
		src := dst.(*AuditSource)
		if local == "AuditSourceTypeCode" {
			src.TypeCodes = append(src.TypeCodes, Code{})
			return p.code(name, empty, &src.TypeCodes[len(src.TypeCodes)-1])
		}
		return p.element(name, empty, kindUnknown, &src.Unknown)
	case kindObject:
		o := dst.(*ParticipantObject)
		switch local {
		case "ParticipantObjectIDTypeCode":
			return p.code(name, empty, &o.IDTypeCode)
		case "ParticipantObjectName":
			return p.element(name, empty, kindText, &o.Name)
		case "ParticipantObjectQuery":
			return p.element(name, empty, kindText, &o.Query)
		case "ParticipantObjectDetail":
			o.Details = append(o.Details, Detail{})
			return p.element(name, empty, kindDetail, &o.Details[len(o.Details)-1])
		}
		return p.element(name, empty, kindUnknown, &o.Unknown)
	}
	return p.element(name, empty, kindSkip, nil)
}

// code reads a code element into c, as Code.UnmarshalXML does.
func (p *fastParser) code(name string, empty bool, c *Code) bool {
	var w codeWire
	if !p.element(name, empty, kindCode, &w) {
		return false
	}
	*c = Code{
		Code:         strings.TrimSpace(first(w.CSDCode, w.Code)),
		System:       strings.TrimSpace(first(w.CodeSystemName, w.CodeSystem)),
		DisplayName:  w.DisplayName,
		OriginalText: w.OriginalText,
	}
	return true
}
