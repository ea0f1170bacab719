package atna

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxMessageSize bounds a message: a longer one is refused, not cut.
const MaxMessageSize = 64 << 10

// Errors Decode and Parse return, wrapped with what they found.
var (
	ErrTooLarge        = errors.New("atna: audit message over 64 KiB")
	ErrDoctype         = errors.New("atna: audit message has a DOCTYPE or other <! declaration")
	ErrEncoding        = errors.New("atna: audit message is not UTF-8")
	ErrNotAuditMessage = errors.New("atna: not an AuditMessage")
	ErrSyntax          = errors.New("atna: audit message is not well-formed XML")
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// Decode reads one message from r, reading at most MaxMessageSize+1 bytes
// (the last only to tell that the message is too large), and parses it.
func Decode(r io.Reader) (*AuditMessage, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("atna: read audit message: %w", err)
	}
	return Parse(data)
}

// Parse parses one message: UTF-8 with or without a BOM and an XML
// declaration, with or without namespaces, whose root element is
// AuditMessage. Unknown elements and attributes are ignored. It refuses a
// message over MaxMessageSize, any DOCTYPE (so no entity is ever declared,
// let alone expanded) and any other encoding.
func Parse(data []byte) (*AuditMessage, error) {
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("%w: it is over %d bytes; send one message per frame", ErrTooLarge, MaxMessageSize)
	}
	data = bytes.TrimPrefix(data, bom)
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return nil, fmt.Errorf("%w: it starts with a UTF-16 byte order mark; send it as UTF-8", ErrEncoding)
	}
	if err := checkProlog(data); err != nil {
		return nil, err
	}
	// The common shape without encoding/xml, to the same message.
	if m, ok := parseFast(data); ok {
		return m, nil
	}
	return parseXML(data)
}

// parseXML parses a message that passed Parse's first checks with
// encoding/xml.
func parseXML(data []byte) (*AuditMessage, error) {
	// One pass: the decoder reads its tokens through the checks, and the
	// rest of the document, past the root, is read through them after.
	c := &checked{d: xml.NewDecoder(bytes.NewReader(data))}
	var m AuditMessage
	err := xml.NewTokenDecoder(c).Decode(&m)
	for err == nil {
		_, err = c.Token()
	}
	switch {
	case c.err != nil:
		return nil, c.err
	case err != io.EOF:
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	case c.roots == 0:
		return nil, fmt.Errorf("%w: no <AuditMessage> element", ErrNotAuditMessage)
	}
	return &m, nil
}

// checked passes on the tokens of a document, refusing a declared
// encoding other than UTF-8, any <! declaration (a DOCTYPE, wherever it
// is), a root other than AuditMessage and anything but one root element.
// The first refusal is kept in err, as the decoder may wrap what Token
// returns.
type checked struct {
	d     *xml.Decoder
	depth int
	roots int
	err   error
}

func (c *checked) Token() (xml.Token, error) {
	if c.err != nil {
		return nil, c.err
	}
	tok, err := c.d.RawToken() // the outer decoder translates names and matches tags, once
	if err != nil {
		if err != io.EOF {
			c.err = fmt.Errorf("%w: %v", ErrSyntax, err)
			return nil, c.err
		}
		return nil, err
	}
	switch t := tok.(type) {
	case xml.Directive:
		c.err = fmt.Errorf("%w: <!%s>: a DOCTYPE could declare entities; send the message without it", ErrDoctype, clip(string(t), 40))
	case xml.StartElement:
		if c.depth == 0 {
			c.roots++
			if t.Name.Local != "AuditMessage" || c.roots > 1 {
				c.err = fmt.Errorf("%w: the root element is <%s>, expected one <AuditMessage>", ErrNotAuditMessage, clip(t.Name.Local, 40))
			}
		}
		c.depth++
	case xml.EndElement:
		c.depth--
	}
	if c.err != nil {
		return nil, c.err
	}
	return tok, nil
}

// checkProlog refuses an XML declaration naming an encoding other than
// UTF-8 (encoding/xml would refuse it too, but less clearly).
func checkProlog(data []byte) error {
	data = bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(data, []byte("<?xml")) {
		return nil
	}
	decl, _, _ := bytes.Cut(data, []byte("?>"))
	enc := pseudoAttr(string(decl[len("<?xml"):]), "encoding")
	if enc == "" || strings.EqualFold(enc, "utf-8") {
		return nil
	}
	return fmt.Errorf("%w: it declares encoding %q; send it as UTF-8", ErrEncoding, clip(enc, 40))
}

// pseudoAttr returns the value of name="…" or name='…' in an XML
// declaration's content, or "".
func pseudoAttr(s, name string) string {
	i := strings.Index(s, name)
	if i < 0 {
		return ""
	}
	s = strings.TrimLeft(s[i+len(name):], " \t\r\n")
	if !strings.HasPrefix(s, "=") {
		return ""
	}
	s = strings.TrimLeft(s[1:], " \t\r\n")
	if s == "" || s[0] != '"' && s[0] != '\'' {
		return ""
	}
	v, _, ok := strings.Cut(s[1:], s[:1])
	if !ok {
		return ""
	}
	return v
}

// clip cuts s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cut(s, n) + "…"
}
