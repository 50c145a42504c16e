package sip2

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxMessage bounds a message (a reply from an ILS): real ones are a few
// hundred bytes, a patron's long lists a few KB.
const MaxMessage = 16 << 10

// Field is one variable field.
type Field struct {
	Tag   string // two characters
	Value string
}

// Message is one SIP2 message.
type Message struct {
	Code  string // two digits: "93" login, "94" its reply, ...
	Fixed string // the fixed-length part after the code
	// Fields in the order sent. AY and AZ are not among them.
	Fields []Field
	// Seq is the AY sequence number (0-9); HasSeq tells whether the
	// message carried error detection.
	Seq    int
	HasSeq bool
}

// Get returns the first value of tag.
func (m Message) Get(tag string) (string, bool) {
	for _, f := range m.Fields {
		if f.Tag == tag {
			return f.Value, true
		}
	}
	return "", false
}

// fixedLen is the length of each message's fixed part, by code, from
// the standard's field tables. A code not here is refused.
var fixedLen = map[string]int{
	"93": 1 + 1,              // login: UID algorithm, PWD algorithm
	"94": 1,                  // login response: ok
	"99": 1 + 3 + 4,          // SC status: status code, max print width, protocol version
	"98": 6 + 3 + 3 + 18 + 4, // ACS status: six Y/N flags, timeout period, retries allowed, date, protocol version
	"11": 1 + 1 + 18 + 18,    // checkout: SC renewal policy, no block, transaction date, nb due date
	"12": 1 + 1 + 1 + 1 + 18, // checkout response: ok, renewal ok, magnetic media, desensitize, date
	"09": 1 + 18 + 18,        // checkin: no block, transaction date, return date
	"10": 1 + 1 + 1 + 1 + 18, // checkin response: ok, resensitize, magnetic media, alert, date
	"23": 3 + 18,             // patron status: language, transaction date
	"24": 14 + 3 + 18,        // patron status response: patron status, language, date
	"63": 3 + 18 + 10,        // patron information: language, transaction date, summary
	"64": 14 + 3 + 18 + 6*4,  // patron information response: status, language, date, six counts
	"17": 18,                 // item information: transaction date
	"18": 2 + 2 + 2 + 18,     // item information response: circulation status, security marker, fee type, date
	"97": 0,                  // request ACS resend
	"96": 0,                  // request SC resend
}

// Checksum is the SIP2 checksum of s (everything up to and including
// "AZ"): the two's complement of the sum of its bytes, 16 bits, as four
// upper-case hex digits.
func Checksum(s string) string {
	var sum uint16
	for i := 0; i < len(s); i++ {
		sum += uint16(s[i])
	}
	return fmt.Sprintf("%04X", uint16(-sum))
}

// Errors of Decode.
var (
	ErrTooLong     = errors.New("sip2: message over the size bound")
	ErrMalformed   = errors.New("sip2: malformed message")
	ErrChecksum    = errors.New("sip2: bad checksum")
	ErrUnknownCode = errors.New("sip2: unknown message code")
)

// Encode renders m with its terminating carriage return; with
// errorDetection, AY (seq, 0-9) and AZ (checksum) end it. A fixed part of
// the wrong length, a bad tag, or a value with '|' or a line break is an
// error: it would change the message's meaning.
func Encode(m Message, seq int, errorDetection bool) (string, error) {
	n, ok := fixedLen[m.Code]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownCode, m.Code)
	}
	if len(m.Fixed) != n {
		return "", fmt.Errorf("sip2: message %s: fixed part of %d characters, want %d", m.Code, len(m.Fixed), n)
	}
	var b strings.Builder
	b.WriteString(m.Code)
	b.WriteString(m.Fixed)
	for _, f := range m.Fields {
		if len(f.Tag) != 2 || f.Tag == "AY" || f.Tag == "AZ" || !isTag(f.Tag) {
			return "", fmt.Errorf("sip2: message %s: bad field tag %q", m.Code, f.Tag)
		}
		if strings.ContainsAny(f.Value, "|\r\n") {
			return "", fmt.Errorf("sip2: message %s: field %s: a value may not hold '|' or a line break", m.Code, f.Tag)
		}
		b.WriteString(f.Tag)
		b.WriteString(f.Value)
		b.WriteByte('|')
	}
	if errorDetection {
		if seq < 0 || seq > 9 {
			return "", fmt.Errorf("sip2: sequence %d: want 0 to 9", seq)
		}
		b.WriteString("AY")
		b.WriteByte(byte('0' + seq))
		b.WriteString("AZ")
		b.WriteString(Checksum(b.String()))
	}
	if b.Len() > MaxMessage {
		return "", ErrTooLong
	}
	b.WriteByte('\r')
	return b.String(), nil
}

func isTag(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Decode parses one message (its carriage return, and a line feed some
// servers add, optional). With verify, a message carrying AZ must have
// the right checksum (some ILSs send wrong ones: sip2.verify_checksums
// false accepts their replies). Any input gives a message or an error,
// never a panic.
func Decode(line string, verify bool) (Message, error) {
	line = strings.TrimRight(line, "\r\n")
	if len(line) > MaxMessage {
		return Message{}, ErrTooLong
	}
	if len(line) < 2 {
		return Message{}, fmt.Errorf("%w: %d characters", ErrMalformed, len(line))
	}
	m := Message{Code: line[:2]}
	n, ok := fixedLen[m.Code]
	if !ok {
		return m, fmt.Errorf("%w %q", ErrUnknownCode, m.Code)
	}
	body := line
	if i := strings.LastIndex(line, "AZ"); i >= 2+n && len(line)-i == 6 && isHex(line[i+2:]) {
		if verify && Checksum(line[:i+2]) != line[i+2:] {
			return m, fmt.Errorf("%w: %s, computed %s", ErrChecksum, line[i+2:], Checksum(line[:i+2]))
		}
		body = line[:i]
		if j := len(body) - 3; j >= 2+n && body[j:j+2] == "AY" && body[j+2] >= '0' && body[j+2] <= '9' {
			m.Seq, m.HasSeq = int(body[j+2]-'0'), true
			body = body[:j]
		}
	}
	if len(body) < 2+n {
		return m, fmt.Errorf("%w: message %s: %d characters, its fixed part alone is %d", ErrMalformed, m.Code, len(body), 2+n)
	}
	m.Fixed, body = body[2:2+n], body[2+n:]
	for body != "" {
		if len(body) < 2 {
			return m, fmt.Errorf("%w: message %s: a field without its tag", ErrMalformed, m.Code)
		}
		tag := body[:2]
		if !isTag(tag) {
			return m, fmt.Errorf("%w: message %s: bad field tag %q", ErrMalformed, m.Code, tag)
		}
		end := strings.IndexByte(body, '|')
		if end < 0 {
			// The last field without its pipe: tolerated, as servers send it.
			end = len(body)
			m.Fields = append(m.Fields, Field{Tag: tag, Value: body[2:end]})
			break
		}
		m.Fields = append(m.Fields, Field{Tag: tag, Value: body[2:end]})
		body = body[end+1:]
	}
	return m, nil
}

func isHex(s string) bool {
	_, err := strconv.ParseUint(s, 16, 16)
	return err == nil && strings.ToUpper(s) == s
}
