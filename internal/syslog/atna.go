package syslog

import "bytes"

// AuditXML returns the XML document in an ATNA message body (IHE ITI-20: a
// DICOM PS3.15 A.5 AuditMessage, or the older RFC 3881 form) for an XML
// decoder: without a UTF-8 BOM and surrounding whitespace (trailing NULs
// too), from its first '<', with its XML declaration if it has one. It
// reports false when the body does not look like one XML document: it must
// start with a declaration, a comment, a DOCTYPE or an element, and end
// with '>'. It does not check more: the decoder does. The result shares
// body's memory.
func AuditXML(body []byte) ([]byte, bool) {
	b := bytes.TrimPrefix(body, bom)
	b = bytes.TrimLeft(b, " \t\r\n")
	b = bytes.TrimRight(b, " \t\r\n\x00")
	if len(b) < 3 || b[0] != '<' || b[len(b)-1] != '>' {
		return nil, false
	}
	switch c := b[1]; {
	case c == '?':
		return b, bytes.HasPrefix(b, []byte("<?xml")) && len(b) > 5 && isXMLSpace(b[5])
	case c == '!':
		return b, bytes.HasPrefix(b, []byte("<!--")) || bytes.HasPrefix(b, []byte("<!DOCTYPE"))
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c >= 0x80:
		return b, true
	}
	return nil, false
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
