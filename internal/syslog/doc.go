// Package syslog reads syslog messages off a stream and parses them, for
// receiving IHE ATNA audit messages (ITI-20, Record Audit Event).
//
// Framing. A Reader splits a TCP or TLS stream into messages:
//
//   - OctetCounting (RFC 5425, RFC 6587 3.4.1): MSG-LEN SP SYSLOG-MSG, MSG-LEN
//     a decimal without a leading zero. A LF (or CRLF) that ends the message
//     inside its count is dropped, since some senders count it.
//   - NonTransparent (RFC 6587 3.4.2): a message ends at LF; a CR before the
//     LF is dropped, and NUL ends a message as LF does.
//   - Auto: the first byte of the stream decides, a digit for octet counting,
//     anything else LF framing, once for the whole connection.
//
// LF framing cannot carry a message that holds a LF: an AuditMessage
// pretty-printed over several lines arrives as several messages, each stored
// unparsed. Senders of such XML must use octet counting.
//
// In every framing LF, CR and NUL bytes between messages are skipped: blank
// lines are no messages, nor is the LF some senders put after an
// octet-counted frame. A UDP datagram (RFC 5426) is one message and needs no
// Reader: give it to Parse.
//
// Limits. A message is at most Config.MaxSize bytes without its framing
// (DefaultMaxSize, 64 KiB, unless set). A Reader holds at most that plus one
// byte of a message and its fixed read-ahead; it refuses an octet-counted
// frame as soon as it reads its length, and a line as soon as it passes the
// maximum without an end. Each message is returned in its own slice.
//
// Failure of a Reader. io.EOF at a frame boundary; io.ErrUnexpectedEOF
// inside a frame (in LF framing with the unterminated tail, which may be a
// whole message whose sender closed without the LF); a *FrameError, wrapping
// ErrTooLarge or ErrBadFrame, when a message is over the maximum or the bytes
// where a frame should start are not one (the error quotes them, cut short).
// Errors are final: the stream has lost its boundaries, the Reader returns
// the same error again, and the caller should close the connection.
//
// Parsing. Parse takes one message as RFC 5424
// (<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG], NILVALUE "-",
// SD param values unescaped, a UTF-8 BOM before MSG dropped); else, when
// <PRI> is not followed by a version, as RFC 3164 (<PRI>Mmm dd hh:mm:ss
// HOSTNAME TAG: MSG, or an RFC 3339 timestamp in its place, and a bare
// <PRI>MSG); else, without a <PRI>, as raw, the whole input its body. Parse
// never fails: real senders are sloppy, and an audit repository stores what
// it cannot parse rather than drop it. What was off (a structured-data part
// missing or not well formed, taken as the start of MSG; extra spaces; a
// timestamp not understood, left zero; a header cut short; a field too long
// or not ASCII) is listed in Message.Problems. Trailing LF, CR and NUL bytes
// are dropped before parsing. An RFC 3164 timestamp has no year or zone:
// Parse gives it those of the time the message was received.
//
// ATNA. AuditXML returns the XML document of a message body (a DICOM PS3.15
// A.5 AuditMessage, or the older RFC 3881 form), with or without a BOM, XML
// declaration or surrounding whitespace, for an XML decoder, or false when
// the body is not XML.
package syslog
