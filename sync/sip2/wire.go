package sip2

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Encodings an ILS may speak, by the names of sip2.encoding. UTF-8 is
// nil: no conversion.
var encodings = map[string]encoding.Encoding{
	"utf-8":   nil,
	"gb18030": simplifiedchinese.GB18030,
	"cp850":   charmap.CodePage850,
	"latin1":  charmap.ISO8859_1,
}

// EncodingNames lists the names ParseEncoding takes.
const EncodingNames = "utf-8, gb18030, cp850, latin1"

// ParseEncoding returns the encoding named (utf-8 is nil).
func ParseEncoding(name string) (encoding.Encoding, error) {
	e, ok := encodings[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("encoding %q: known: %s", name, EncodingNames)
	}
	return e, nil
}

// Marshal renders m in enc, as the ILS reads it: the checksum is the sum
// of the bytes sent, so it is computed over the encoded bytes. A value
// enc cannot carry is an error.
func Marshal(m Message, seq int, errorDetection bool, enc encoding.Encoding) ([]byte, error) {
	s, err := Encode(m, 0, false)
	if err != nil {
		return nil, err
	}
	body := []byte(strings.TrimSuffix(s, "\r"))
	if enc != nil {
		if body, err = enc.NewEncoder().Bytes(body); err != nil {
			return nil, fmt.Errorf("sip2: message %s: a value this ILS's encoding cannot carry: %w", m.Code, err)
		}
	}
	if errorDetection {
		if seq < 0 || seq > 9 {
			return nil, fmt.Errorf("sip2: sequence %d: want 0 to 9", seq)
		}
		body = append(body, 'A', 'Y', byte('0'+seq), 'A', 'Z')
		body = append(body, Checksum(string(body))...)
	}
	if len(body) > MaxMessage {
		return nil, ErrTooLong
	}
	return append(body, '\r'), nil
}

// Unmarshal parses one message as read from the ILS (its line end
// optional): the checksum is verified over the bytes received, then the
// text is decoded from enc (a GB18030 character's second byte may be a
// '|', so fields are split only after decoding). Bytes that are not
// valid in enc become U+FFFD.
func Unmarshal(raw []byte, verify bool, enc encoding.Encoding) (Message, error) {
	raw = bytes.TrimRight(raw, "\r\n")
	if len(raw) > MaxMessage {
		return Message{}, ErrTooLong
	}
	if verify {
		if i := bytes.LastIndex(raw, []byte("AZ")); i >= 2 && len(raw)-i == 6 && isHex(string(raw[i+2:])) {
			if Checksum(string(raw[:i+2])) != string(raw[i+2:]) {
				return Message{}, fmt.Errorf("%w: %s, computed %s", ErrChecksum, raw[i+2:], Checksum(string(raw[:i+2])))
			}
		}
	}
	text := string(raw)
	if enc != nil {
		out, err := enc.NewDecoder().Bytes(raw)
		if err != nil {
			return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		text = string(out)
	} else if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	return Decode(text, false)
}

// FormatDate renders t as a SIP2 date, YYYYMMDDZZZZHHMMSS, in UTC (the
// zone "   Z"): a locker's event time means the same to any ILS.
func FormatDate(t time.Time) string {
	t = t.UTC()
	return t.Format("20060102") + "   Z" + t.Format("150405")
}

// ParseDate reads a SIP2 date: zone "   Z" is UTC, blanks are the ILS's
// local time (taken as loc). ok is false for anything else (due dates
// in particular come in many shapes: keep the text).
func ParseDate(s string, loc *time.Location) (t time.Time, ok bool) {
	if len(s) != 18 {
		return time.Time{}, false
	}
	zone := s[8:12]
	switch strings.TrimSpace(zone) {
	case "Z", "UTC":
		loc = time.UTC
	case "":
	default:
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("20060102150405", s[:8]+s[12:], loc)
	return t, err == nil
}
