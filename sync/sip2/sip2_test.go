package sip2

import (
	"errors"
	"strings"
	"testing"
)

// The checksums of the standard's and the ILSs' own examples.
func TestChecksum(t *testing.T) {
	for _, tc := range []struct{ upToAZ, want string }{
		{"990 402.00AY1AZ", "FCB4"}, // 3M SIP2 Developers Guide, p. 26
		{"97AZ", "FEF5"},            // ceridwen's SIP library, its resend test case
	} {
		if got := Checksum(tc.upToAZ); got != tc.want {
			t.Errorf("Checksum(%q) = %s, want %s", tc.upToAZ, got, tc.want)
		}
	}
}

func withChecksum(upToAZ string) string { return upToAZ + Checksum(upToAZ) }

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		verify     bool
		code       string
		fixed      string
		fields     []Field
		seq        int
		err        error
	}{
		{"SC status with its checksum", "990 402.00AY1AZFCB4\r", true, "99", "0 402.00", nil, 1, nil},
		{"login", "9300CNLoginUserID|COLoginPassword|CPLocationCode|AY5AZEC7B\r", true, "93", "00",
			[]Field{{"CN", "LoginUserID"}, {"CO", "LoginPassword"}, {"CP", "LocationCode"}}, 5, nil},
		{"patron status, empty fields kept", withChecksum("23001" + "19960212    100239" + "AOid_21|104000000105|AC|AD|AY2AZ"), true, "23", "00119960212    100239",
			[]Field{{"AO", "id_21"}, {"10", "4000000105"}, {"AC", ""}, {"AD", ""}}, 2, nil},
		{"item information", withChecksum("17" + "20261120   Z093000" + "AONBLIB|AB39000001|AC|AY4AZ"), true, "17", "20261120   Z093000",
			[]Field{{"AO", "NBLIB"}, {"AB", "39000001"}, {"AC", ""}}, 4, nil},
		{"item information response, charged", withChecksum("18" + "040001" + "20261120   Z093000" + "AB39000001|AJ西游记|AH20261211    235900|AY4AZ"), true, "18", "04000120261120   Z093000",
			[]Field{{"AB", "39000001"}, {"AJ", "西游记"}, {"AH", "20261211    235900"}}, 4, nil},
		{"a wrong checksum", "990 402.00AY1AZFCB5\r", true, "99", "", nil, 0, ErrChecksum},
		{"a wrong checksum, not verified", "990 402.00AY1AZFCB5\r", false, "99", "0 402.00", nil, 1, nil},
		{"no error detection, last pipe missing", "941\r\n", true, "94", "1", nil, 0, nil},
		{"unknown code", "XX123", true, "XX", "", nil, 0, ErrUnknownCode},
		{"fixed part cut short", "10YNN", true, "10", "", nil, 0, ErrMalformed},
		{"too long", "94" + strings.Repeat("1", MaxMessage), true, "", "", nil, 0, ErrTooLong},
		{"empty", "", true, "", "", nil, 0, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.line, tc.verify)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || m.Code != tc.code || m.Fixed != tc.fixed || len(m.Fields) != len(tc.fields) || tc.seq != m.Seq {
				t.Fatalf("%+v %v", m, err)
			}
			for i, f := range tc.fields {
				if m.Fields[i] != f {
					t.Fatalf("field %d: %+v, want %+v", i, m.Fields[i], f)
				}
			}
		})
	}
}

// Every message the bridge sends, encoded, decodes back to itself, with
// and without error detection; what would change a message's meaning is
// refused.
func TestEncode(t *testing.T) {
	date := "20261128    093000"
	msgs := []Message{
		{Code: "93", Fixed: "00", Fields: []Field{{"CN", "locker"}, {"CO", "secret"}, {"CP", "NB-MAIN"}}},
		{Code: "99", Fixed: "0" + "080" + "2.00"},
		{Code: "11", Fixed: "N" + "Y" + date + strings.Repeat(" ", 18), Fields: []Field{{"AO", "NB"}, {"AA", "21000123"}, {"AB", "978702000"}, {"AC", ""}}},
		{Code: "09", Fixed: "N" + date + date, Fields: []Field{{"AP", "nb-cmty-02"}, {"AO", "NB"}, {"AB", "978702000"}, {"AC", ""}}},
		{Code: "63", Fixed: "001" + date + strings.Repeat(" ", 10), Fields: []Field{{"AO", "NB"}, {"AA", "21000123"}, {"AD", "1234"}}},
		{Code: "23", Fixed: "001" + date, Fields: []Field{{"AO", "NB"}, {"AA", "21000123"}, {"AC", ""}, {"AD", ""}}},
		{Code: "17", Fixed: date, Fields: []Field{{"AO", "NB"}, {"AB", "978702000"}, {"AC", ""}}},
		{Code: "97"},
	}
	for _, m := range msgs {
		for _, ed := range []bool{true, false} {
			line, err := Encode(m, 3, ed)
			if err != nil {
				t.Fatalf("encode %s: %v", m.Code, err)
			}
			if !strings.HasSuffix(line, "\r") || strings.Count(line, "\r") != 1 {
				t.Fatalf("%q: one carriage return, at the end", line)
			}
			got, err := Decode(line, true)
			if err != nil || got.Code != m.Code || got.Fixed != m.Fixed || len(got.Fields) != len(m.Fields) || got.HasSeq != ed || ed && got.Seq != 3 {
				t.Fatalf("%q decoded as %+v %v", line, got, err)
			}
			for i := range m.Fields {
				if got.Fields[i] != m.Fields[i] {
					t.Fatalf("%q: field %d %+v", line, i, got.Fields[i])
				}
			}
		}
	}
	for _, tc := range []struct {
		name string
		m    Message
		seq  int
	}{
		{"unknown code", Message{Code: "00"}, 0},
		{"fixed part too short", Message{Code: "94"}, 0},
		{"a pipe in a value", Message{Code: "94", Fixed: "1", Fields: []Field{{"AF", "a|b"}}}, 0},
		{"a line break in a value", Message{Code: "94", Fixed: "1", Fields: []Field{{"AF", "a\rb"}}}, 0},
		{"a tag of three", Message{Code: "94", Fixed: "1", Fields: []Field{{"AFX", "a"}}}, 0},
		{"AZ as a field", Message{Code: "94", Fixed: "1", Fields: []Field{{"AZ", "0000"}}}, 0},
		{"sequence 10", Message{Code: "94", Fixed: "1"}, 10},
	} {
		if line, err := Encode(tc.m, tc.seq, true); err == nil {
			t.Errorf("%s: encoded as %q", tc.name, line)
		}
	}
}

// Decoding arbitrary bytes never panics; what decodes without a checksum
// problem encodes and decodes to the same message.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"990 402.00AY1AZFCB4\r", "9300CNLoginUserID|COLoginPassword|CPLocationCode|AY5AZEC7B", "941", "97AZFEF5", "10YNNN20261128    093000AOx|ABy|CV01|AY0AZ0000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := Decode(line, true)
		if err != nil {
			return
		}
		clean := true
		for _, fl := range m.Fields {
			if len(fl.Tag) != 2 || fl.Tag == "AY" || fl.Tag == "AZ" || strings.ContainsAny(fl.Value, "|\r\n") {
				clean = false
			}
		}
		if !clean {
			return // as received; not something this side would send
		}
		enc, err := Encode(m, m.Seq, m.HasSeq)
		if err != nil {
			t.Fatalf("decoded %+v from %q, cannot encode it: %v", m, line, err)
		}
		back, err := Decode(enc, true)
		if err != nil || back.Code != m.Code || back.Fixed != m.Fixed || len(back.Fields) != len(m.Fields) {
			t.Fatalf("%q -> %+v -> %q -> %+v %v", line, m, enc, back, err)
		}
	})
}

// Bytes from an ILS in any of its encodings: a message or an error, never
// a panic, and what decodes goes back out in the same encoding.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte("1804000120261120   Z093000ABB1|AJ\xba\xec\xc2\xa5\xc3\xce|AY3AZ0000\r"), uint8(1))
	f.Add([]byte("941AY0AZFDFC\r"), uint8(0))
	f.Add([]byte("10YNNY20261128    093000AB\x82|CV02|"), uint8(2))
	names := []string{"utf-8", "gb18030", "cp850", "latin1"}
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		enc, err := ParseEncoding(names[int(which)%len(names)])
		if err != nil {
			t.Fatal(err)
		}
		m, err := Unmarshal(raw, true, enc)
		if err != nil {
			return
		}
		for _, fl := range m.Fields {
			if len(fl.Tag) != 2 || fl.Tag == "AY" || fl.Tag == "AZ" || strings.ContainsAny(fl.Value, "|\r\n\uFFFD") {
				return // as received; not something this side would send
			}
		}
		out, err := Marshal(m, m.Seq, m.HasSeq, enc)
		if err != nil {
			return // a character the encoding cannot carry back (a replacement)
		}
		back, err := Unmarshal(out, true, enc)
		if err != nil || back.Code != m.Code || back.Fixed != m.Fixed || len(back.Fields) != len(m.Fields) {
			t.Fatalf("%q -> %+v -> %q -> %+v %v", raw, m, out, back, err)
		}
	})
}
