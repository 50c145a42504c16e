package serialscan

// MaxLine is the longest scan kept; longer lines are dropped whole.
const MaxLine = 256

// Splitter turns scanner bytes into lines. A line ends at CR, LF or CRLF,
// or (for scanners configured with no suffix) when the caller sees an idle
// gap and calls Flush. Bytes other than printable ASCII are dropped. A line
// longer than MaxLine is dropped whole and counted in Dropped.
type Splitter struct {
	buf      []byte
	overlong bool
	// Dropped counts lines dropped for being too long.
	Dropped int
}

// Feed adds bytes and returns the lines they complete.
func (s *Splitter) Feed(p []byte) []string {
	var lines []string
	for _, c := range p {
		switch {
		case c == '\r' || c == '\n':
			if l, ok := s.end(); ok {
				lines = append(lines, l)
			}
		case c < 0x20 || c > 0x7e:
			// non-printable: dropped
		case s.overlong:
		case len(s.buf) >= MaxLine:
			s.overlong = true
			s.buf = s.buf[:0]
		default:
			s.buf = append(s.buf, c)
		}
	}
	return lines
}

// Pending reports whether a partial line is buffered.
func (s *Splitter) Pending() bool { return len(s.buf) > 0 || s.overlong }

// Flush ends the buffered partial line (after an idle gap).
func (s *Splitter) Flush() (string, bool) { return s.end() }

func (s *Splitter) end() (string, bool) {
	if s.overlong {
		s.overlong = false
		s.buf = s.buf[:0]
		s.Dropped++
		return "", false
	}
	if len(s.buf) == 0 {
		return "", false
	}
	l := string(s.buf)
	s.buf = s.buf[:0]
	return l, true
}
